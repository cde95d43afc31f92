"""Config parsing: annotations resolved with typing (no eval), unsupported field types are
errors, config.json values are type-checked, the data spec is parsed once."""

import dataclasses

import pytest

from scaling.config import (
    Config,
    ConfigError,
    DataConfig,
    ModelConfig,
    _parse_value,
    apply_overrides,
    field_types,
    from_dict,
)
from scaling.data.spec import DataSpec
from scaling.errors import UserError
from scaling.presets import get_preset
from scaling.validate import validate


def test_field_types_are_real_types():
    types = field_types(ModelConfig)
    assert types["dropout"] is float and types["n_layers"] is int
    assert types["scan_layers"] is bool and types["family"] is str


def test_overrides_parse_by_field_type():
    c = apply_overrides(Config(), ["model.dropout=0.25", "train.steps=1e3",
                                   "model.scan_layers=off", "model.norm=post"])
    assert (c.model.dropout, c.train.steps, c.model.scan_layers, c.model.norm) == \
        (0.25, 1000, False, "post")
    with pytest.raises(ConfigError, match="type int"):
        apply_overrides(Config(), ["train.steps=2.5"])
    with pytest.raises(ConfigError, match="type bool"):
        apply_overrides(Config(), ["model.scan_layers=maybe"])


def test_a_field_of_an_unsupported_type_is_an_error_not_a_string():
    with pytest.raises(TypeError, match="unsupported type"):
        _parse_value("x.y", "1,2", list)


def test_from_dict_round_trips_and_checks_types():
    c = get_preset("bert-tiny")
    assert from_dict(c.to_dict()) == c
    d = c.to_dict()
    d["model"]["n_layers"] = "2"
    with pytest.raises(ConfigError, match="model.n_layers='2' is not a int"):
        from_dict(d, where="run/config.json")
    d = c.to_dict()
    d["train"]["steps"] = True  # a bool is not an int here
    with pytest.raises(ConfigError, match="train.steps"):
        from_dict(d)
    d = c.to_dict()
    d["optim"]["lr"] = 1  # an int where a float is expected is fine
    assert from_dict(d).optim.lr == 1.0
    with pytest.raises(ConfigError, match="expected a JSON object"):
        from_dict([1, 2])


def test_the_data_spec_is_parsed_once_into_a_typed_value():
    d = DataConfig(source="tfds:wmt14_translate/de-en")
    assert d.spec == DataSpec("tfds", "wmt14_translate/de-en")
    assert d.spec is d.spec  # cached on the frozen config
    assert d.spec.tfds_config == "de-en" and str(d.spec) == d.source
    assert DataConfig().spec.kind == "embedded"
    bad = dataclasses.replace(get_preset("gpt-tiny"), data=DataConfig(source="s3:bucket"))
    with pytest.raises(UserError, match="unknown data source"):
        validate(bad)
