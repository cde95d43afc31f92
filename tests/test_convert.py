"""HuggingFace conversion (scaling/hf/): random-weight HF models are the oracle.

Tiny HF models of each supported architecture are built from configs with weights drawn
from N(0, 0.2) (large enough that a transposed matrix, a wrong activation, a missing 1/√H
or a band off by one shows), saved locally, and converted with `scaling convert`. Their
logits, greedy continuations and task scores must equal the HF model's.
"""

import json
import os
import shutil

import jax
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from scaling.checkpoint.load import read_config  # noqa: E402
from scaling.checkpoint.manager import Checkpoints, checkpoint_dir  # noqa: E402
from scaling.cli import main  # noqa: E402
from scaling.families import family_of  # noqa: E402

V, T, STD = 300, 24, 0.2
TEXT = ("The quick brown fox jumps over the lazy dog.\nCafé, naïve — 東京 🙂 tabs\tand  spaces.\n"
        "def f(x):\n    return x * 2  # comment\n") * 20


def _randomize(model):
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, STD)
    return model.eval()


def _hf_models():
    """name -> (HF model, config kwargs); every model tiny, float32, eager attention."""
    t = transformers
    eager = dict(attn_implementation="eager")
    return {
        "gpt2": t.GPT2LMHeadModel(t.GPT2Config(
            vocab_size=V, n_positions=32, n_embd=32, n_layer=2, n_head=4, bos_token_id=0,
            eos_token_id=0, **eager)),
        "openai": t.OpenAIGPTLMHeadModel(t.OpenAIGPTConfig(
            vocab_size=V, n_positions=32, n_embd=32, n_layer=2, n_head=4)),
        "neo": t.GPTNeoForCausalLM(t.GPTNeoConfig(
            vocab_size=V, max_position_embeddings=32, hidden_size=32, num_layers=2,
            num_heads=4, attention_types=[[["global", "local"], 1]], window_size=5,
            bos_token_id=0, eos_token_id=0, **eager)),
        "bert": t.BertForPreTraining(t.BertConfig(
            vocab_size=V, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=64, max_position_embeddings=32, **eager)),
    }


def _train_tokenizer(directory):
    """A byte-level BPE tokenizer.json trained on local text with the `tokenizers` library."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=V, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(TEXT.splitlines(), trainer)
    tok.save(os.path.join(directory, "tokenizer.json"))
    special = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
               "unk_token": "<|endoftext|>"}
    with open(os.path.join(directory, "tokenizer_config.json"), "w") as f:
        json.dump(special, f)
    return tok


@pytest.fixture(scope="module")
def hf(tmp_path_factory):
    """name -> {model, dir, run}: each HF model saved and converted once."""
    root = tmp_path_factory.mktemp("hf")
    out = {}
    for name, model in _hf_models().items():
        model = _randomize(model)
        directory, run = str(root / name), str(root / f"run-{name}")
        model.save_pretrained(directory)
        if name == "gpt2":
            tok = _train_tokenizer(directory)
            assert tok.get_vocab_size() <= V
        assert main(["convert", "--from-hf", directory, "--workdir", run]) == 0
        out[name] = {"model": model, "dir": directory, "run": run}
    return out


def _params(run):
    ckpt = Checkpoints(checkpoint_dir(run), read_only=True)
    params = ckpt.restore_numpy(ckpt.latest_step())["params"]
    ckpt.manager.close()
    return params


def _ours(run, *args):
    config = read_config(run)
    family = family_of(config.model)
    apply = jax.jit(family.make_model(config.model, "eval").apply)
    return config, apply({"params": _params(run)}, *args)


def _ids(seed=0, shape=(2, T)):
    return np.random.default_rng(seed).integers(0, V, shape).astype(np.int32)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gpt2", "openai", "neo"])
def test_causal_logits_match_hf(hf, name):
    ids = _ids()
    with torch.no_grad():
        want = hf[name]["model"](torch.tensor(ids, dtype=torch.long)).logits.numpy()
    pos = np.broadcast_to(np.arange(T), ids.shape)
    _, got = _ours(hf[name]["run"], ids, pos, np.ones_like(ids))
    np.testing.assert_allclose(np.asarray(got)[..., :V], want, atol=1e-4, rtol=0)
    assert np.abs(want).max() > 0.5  # the weights are large enough for errors to show


def _bert_inputs():
    ids, types = _ids(1), _ids(2) % 2
    valid = np.ones_like(ids)
    valid[1, T - 7:] = 0  # the second row is padded
    ids = np.where(valid == 1, ids, 0)
    return ids, types, valid


def test_bert_logits_match_hf_with_padding(hf):
    ids, types, valid = _bert_inputs()
    with torch.no_grad():
        out = hf["bert"]["model"](torch.tensor(ids, dtype=torch.long),
                                  attention_mask=torch.tensor(valid, dtype=torch.long),
                                  token_type_ids=torch.tensor(types, dtype=torch.long))
    pos = np.broadcast_to(np.arange(T), ids.shape)
    _, (mlm, nsp) = _ours(hf["bert"]["run"], ids, types, pos, valid)
    real = valid == 1
    np.testing.assert_allclose(np.asarray(mlm)[..., :V][real],
                               out.prediction_logits.numpy()[real], atol=1e-4, rtol=0)
    np.testing.assert_allclose(np.asarray(nsp), out.seq_relationship_logits.numpy(),
                               atol=1e-4, rtol=0)


def test_bert_masked_lm_and_base_model_import(hf, tmp_path):
    """BertForMaskedLM (no pooler/NSP) and BertModel (no heads) import; the MLM logits of
    BertForMaskedLM match, missing heads are initialized."""
    src = hf["bert"]["model"]
    mlm = transformers.BertForMaskedLM(src.config).eval()
    mlm.load_state_dict(src.state_dict(), strict=False)
    mlm.save_pretrained(tmp_path / "mlm")
    assert main(["convert", "--from-hf", str(tmp_path / "mlm"), "--workdir",
                 str(tmp_path / "run-mlm"), "--set", "model.scan_layers=false"]) == 0
    ids, types, valid = _bert_inputs()
    with torch.no_grad():
        want = mlm(torch.tensor(ids, dtype=torch.long), attention_mask=torch.tensor(valid),
                   token_type_ids=torch.tensor(types, dtype=torch.long)).logits.numpy()
    pos = np.broadcast_to(np.arange(T), ids.shape)
    _, (got, _) = _ours(str(tmp_path / "run-mlm"), ids, types, pos, valid)
    real = valid == 1
    np.testing.assert_allclose(np.asarray(got)[..., :V][real], want[real], atol=1e-4, rtol=0)
    transformers.BertModel(src.config).save_pretrained(tmp_path / "base")
    assert main(["convert", "--from-hf", str(tmp_path / "base"), "--workdir",
                 str(tmp_path / "run-base")]) == 0


HF_CLASSES = {"gpt2": "GPT2LMHeadModel", "openai": "OpenAIGPTLMHeadModel",
              "neo": "GPTNeoForCausalLM", "bert": "BertForPreTraining"}


@pytest.fixture(scope="module")
def exported(hf, tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    out = {}
    for name, item in hf.items():
        out[name] = str(root / name)
        assert main(["convert", "--workdir", item["run"], "--to-hf", out[name]]) == 0
    return out


@pytest.mark.parametrize("name", ["gpt2", "openai", "neo", "bert"])
def test_export_loads_in_transformers_with_the_same_logits(hf, exported, name):
    cls = getattr(transformers, HF_CLASSES[name])
    back, info = cls.from_pretrained(exported[name], output_loading_info=True,
                                     attn_implementation="eager")
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    ids = torch.tensor(_ids(3), dtype=torch.long)
    with torch.no_grad():
        a, b = hf[name]["model"](ids), back.eval()(ids)
    key = "prediction_logits" if name == "bert" else "logits"
    np.testing.assert_allclose(b[key].numpy(), a[key].numpy(), atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", ["gpt2", "openai", "neo", "bert"])
def test_import_export_import_is_bitwise(hf, exported, name, tmp_path):
    run2 = str(tmp_path / "again")
    assert main(["convert", "--from-hf", exported[name], "--workdir", run2]) == 0
    a, b = _params(hf[name]["run"]), _params(run2)
    flat_a, flat_b = jax.tree_util.tree_leaves_with_path(a), jax.tree_util.tree_leaves_with_path(b)
    assert [p for p, _ in flat_a] == [p for p, _ in flat_b]
    for (path, x), (_, y) in zip(flat_a, flat_b, strict=True):
        assert x.dtype == y.dtype and np.array_equal(x, y), path


def test_greedy_continuation_matches_hf_generate_through_gpt_neo_bands(hf):
    """Token ids of our KV-cache decoder vs HF greedy generate, past the local window (GPT-2
    is compared through `scaling generate` below)."""
    from scaling.checkpoint.load import load_run

    name = "neo"
    loaded = load_run(hf[name]["run"], one_device=True)
    config, params = loaded.config, loaded.params
    prompt = _ids(4, (1, 6))
    new = 16  # past GPT-Neo's window of 5: the banded cache path is exercised
    decoder = family_of(config.model).decoder
    got = decoder(config.model, params, prompt, jax.random.key(0), new_tokens=new,
                  temperature=0.0, top_k=0)
    with torch.no_grad():
        want = hf[name]["model"].generate(torch.tensor(prompt, dtype=torch.long),
                                          attention_mask=torch.ones(prompt.shape, dtype=torch.long),
                                          max_new_tokens=new, min_new_tokens=new,
                                          do_sample=False, eos_token_id=None, pad_token_id=0)
    assert np.asarray(got)[0].tolist() == want[0, prompt.shape[1]:].tolist()


def test_hf_tokenizer_round_trip_generate_and_task_scores(hf, tmp_path, capsys):
    from scaling.checkpoint.load import load_run
    from scaling.data.tokenizers.run_copy import run_tokenizer
    from scaling.eval.fewshot import pack_choice, score

    run, model = hf["gpt2"]["run"], hf["gpt2"]["model"]
    loaded = load_run(run, one_device=True)
    config, params = loaded.config, loaded.params
    tok = run_tokenizer(run, config)
    assert tok.kind == "hf" and os.path.isfile(os.path.join(run, "tokenizer", "tokenizer.json"))
    assert tok.decode(tok.encode(TEXT)) == TEXT
    hf_tok = transformers.AutoTokenizer.from_pretrained(hf["gpt2"]["dir"])
    assert tok.encode(TEXT) == hf_tok(TEXT, add_special_tokens=False)["input_ids"]
    bos = hf_tok.bos_token_id
    assert tok.bos_id == tok.eos_id == bos
    assert config.data.bos_prefix is False  # GPT-2's tokenizer adds no bos: nor do we

    # scaling generate --temperature 0 == HF greedy generate of the prompt as HF's tokenizer
    # encodes it (no bos added), through the CLI and the text
    prompt = "The quick"
    assert main(["generate", "--workdir", run, "--prompt", prompt, "--max-new-tokens", "8",
                 "--temperature", "0"]) == 0
    printed = capsys.readouterr().out.rstrip("\n")
    ids = hf_tok(prompt)["input_ids"]
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids),
                             dtype=torch.long), max_new_tokens=8, do_sample=False,
                             pad_token_id=bos)[0, len(ids):].tolist()
    out = out[:out.index(bos)] if bos in out else out
    assert printed == prompt + hf_tok.decode(out, skip_special_tokens=True)

    # a jsonl task: per-choice log-likelihoods equal the HF model's
    examples = [{"context": "The quick brown", "choices": [" fox", " dog jumps", " tabs"],
                 "answer": 0},
                {"context": "def f(x):\n", "choices": ["    return x", "Café"], "answer": 0},
                {"context": "東京", "choices": [" 🙂", " lazy"], "answer": 1}]
    task = tmp_path / "task.jsonl"
    task.write_text("".join(json.dumps(e) + "\n" for e in examples))
    rows, want = [], []
    for ex in examples:
        ctx = hf_tok(ex["context"])["input_ids"]
        for choice in ex["choices"]:
            c = hf_tok(choice, add_special_tokens=False)["input_ids"]
            rows.append(pack_choice(tok.encode(ex["context"]), tok.encode(choice),
                                    config.model.max_len))
            with torch.no_grad():
                logp = torch.log_softmax(model(torch.tensor([ctx + c])).logits[0], -1)
            want.append(sum(float(logp[len(ctx) - 1 + i, t]) for i, t in enumerate(c)))
    np.testing.assert_allclose(score(config.model, params, rows), want, atol=1e-4, rtol=0)
    assert main(["eval", "--workdir", run, "--tasks", f"jsonl:{task}"]) == 0
    result = json.loads(open(os.path.join(run, "eval.jsonl")).read().splitlines()[-1])
    spans = np.cumsum([0] + [len(e["choices"]) for e in examples])
    hf_acc = np.mean([np.argmax(want[a:b]) == e["answer"]
                      for a, b, e in zip(spans[:-1], spans[1:], examples, strict=True)])
    assert result["acc"] == pytest.approx(hf_acc)


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


LN_F, FC_1 = "transformer.ln_f.bias", "transformer.h.1.mlp.c_fc.weight"


def _bad_dirs(gpt2_dir, root):
    """case -> (the --from-hf directory, extra flags, words the one-line error must hold)."""
    from safetensors.numpy import load_file, save_file

    def variant(name, edit):
        d = _copy(gpt2_dir, root / name)
        edit(d)
        return str(d)

    def set_arch(d):
        cfg = json.loads((d / "config.json").read_text())
        (d / "config.json").write_text(json.dumps({**cfg, "architectures": ["LlamaForCausalLM"]}))

    def truncate(d):
        data = (d / "model.safetensors").read_bytes()
        (d / "model.safetensors").write_bytes(data[: len(data) // 2])

    def edit_tensors(fn):
        def edit(d):
            tensors = load_file(str(d / "model.safetensors"))
            save_file(fn(tensors), str(d / "model.safetensors"))
        return edit

    def shard_index(d):
        (d / "model.safetensors").unlink()
        (d / "model.safetensors.index.json").write_text(json.dumps(
            {"weight_map": {"wte.weight": "model-00001-of-00002.safetensors"}}))

    def set_config(**values):
        def edit(d):
            cfg = json.loads((d / "config.json").read_text())
            (d / "config.json").write_text(json.dumps({**cfg, **values}))
        return edit

    def damaged_index(d):
        (d / "model.safetensors.index.json").write_text(json.dumps({"weight_map": ["x"]}))

    (root / "empty").mkdir()
    return {
        # the fuzz classes of docs/reliability.md: types checked where config.json and the
        # index are parsed, the vocabulary against the weights, no tensor silently ignored
        "config value of the wrong type": (variant("strtype", set_config(n_embd="32")), [],
                                           ["n_embd='32'", "whole number"]),
        "damaged shard index": (variant("badindex", damaged_index), [], ["weight_map"]),
        "vocabulary larger than the weights": (variant("bigvocab", set_config(vocab_size=V + 50)),
                                               [], [f"vocab_size={V + 50}", f"{V} rows"]),
        "unknown extra tensor": (variant("extra", edit_tensors(
            lambda t: {**t, "h.0.mlp.extra.weight": t[LN_F]})), [],
            ["no parameter comes from", "h.0.mlp.extra.weight"]),
        "no config.json": (str(root / "empty"), [], ["no config.json"]),
        "unsupported architecture": (variant("arch", set_arch), [],
                                     ["LlamaForCausalLM", "GPT2LMHeadModel", "BertModel"]),
        "shape against --config": (gpt2_dir, ["--config", "gpt2-small"],
                                   ["does not match", "d_model"]),
        "no weights": (variant("noweights", lambda d: (d / "model.safetensors").unlink()), [],
                       ["no weights"]),
        "missing shard": (variant("shard", shard_index), [], ["missing"]),
        "truncated file": (variant("trunc", truncate), [], ["truncated"]),
        "unreadable dtype": (variant("dtype", edit_tensors(
            lambda t: {**t, LN_F: t[LN_F].astype(np.int8)})), [], ["I8"]),
        "missing tensor": (variant("lost", edit_tensors(
            lambda t: {k: v for k, v in t.items() if k != FC_1})), [], ["h.1.mlp.c_fc.weight"]),
    }


def test_bad_input_is_one_line_exit_2_and_writes_nothing(hf, tmp_path, capsys):
    cases = _bad_dirs(hf["gpt2"]["dir"], tmp_path)
    for case, (directory, flags, words) in cases.items():
        run = tmp_path / f"run-{case.replace(' ', '-')}"
        rc = main(["convert", "--from-hf", directory, "--workdir", str(run), *flags])
        err = capsys.readouterr().err.strip()
        assert rc == 2, case
        assert err.startswith("scaling: error:") and "\n" not in err, (case, err)
        assert all(w in err for w in words), (case, err)
        assert not run.exists(), case


def test_sharded_export_and_import(hf, tmp_path, monkeypatch):
    """Export in several safetensors shards with an index (small shard size), load it with
    transformers, import it back: the same parameters bit for bit."""
    from scaling.hf import stream

    monkeypatch.setattr(stream, "SHARD_BYTES", 16_000)
    out, run2 = str(tmp_path / "sharded"), str(tmp_path / "again")
    assert main(["convert", "--workdir", hf["gpt2"]["run"], "--to-hf", out]) == 0
    index = json.loads(open(os.path.join(out, "model.safetensors.index.json")).read())
    assert len(set(index["weight_map"].values())) > 2
    back = transformers.GPT2LMHeadModel.from_pretrained(out).eval()
    ids = torch.tensor(_ids(5), dtype=torch.long)
    with torch.no_grad():
        np.testing.assert_allclose(back(ids).logits.numpy(),
                                   hf["gpt2"]["model"](ids).logits.numpy(), atol=1e-4, rtol=0)
    assert main(["convert", "--from-hf", out, "--workdir", run2]) == 0
    for x, y in zip(jax.tree.leaves(_params(hf["gpt2"]["run"])), jax.tree.leaves(_params(run2)),
                    strict=True):
        assert np.array_equal(x, y)


def test_a_locked_run_directory_is_refused(hf, tmp_path, capsys):
    """docs/reliability.md row 13: `scaling convert --from-hf` takes the run-directory lock;
    nothing is written while another job holds it."""
    from scaling.lock import RunLock

    run = tmp_path / "run"
    with RunLock(str(run), "train"):
        code = main(["convert", "--from-hf", hf["gpt2"]["dir"], "--workdir", str(run)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "in use by" in err, err
    assert not (run / "checkpoints").exists()


def test_a_killed_converts_leftover_is_cleaned_and_a_live_one_named(hf, tmp_path, capsys):
    """A `.convert-tmp-PID` left by a killed convert does not block the rerun (it is removed
    under the lock); while a convert holds the lock, a second one is told who holds it."""
    from scaling.hf.from_hf import TMP_PREFIX
    from scaling.lock import RunLock

    run = tmp_path / "run"
    (run / f"{TMP_PREFIX}999999999").mkdir(parents=True)  # no such process
    with RunLock(str(run), "convert"):
        code = main(["convert", "--from-hf", hf["gpt2"]["dir"], "--workdir", str(run)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "in use by" in err, err
    assert main(["convert", "--from-hf", hf["gpt2"]["dir"], "--workdir", str(run)]) == 0
    assert not [n for n in os.listdir(run) if n.startswith(TMP_PREFIX)]


def test_export_onto_a_full_disk_is_one_line(hf, tmp_path, monkeypatch, capsys):
    """safetensors reports a failed write as a SafetensorError wrapping the OS error (not
    an OSError): one line naming the file, and no partial export left."""
    import safetensors.numpy
    from safetensors import SafetensorError

    def full(*args, **kwargs):
        raise SafetensorError("Error while serializing: IoError(Os { code: 28, kind: "
                              "StorageFull, message: \"No space left on device\" })")

    monkeypatch.setattr(safetensors.numpy, "save_file", full)
    out = tmp_path / "hf"
    assert main(["convert", "--workdir", hf["gpt2"]["run"], "--to-hf", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot write" in err and "No space left" in err, err
    assert not out.exists() and not list(tmp_path.glob("hf.tmp-*"))
