"""Encoder-decoder presets (Vaswani et al. 2017 Table 3): base and big, shared 37k BPE vocab."""

from scaling.config import (
    Config,
    DataConfig,
    MeshConfig,
    ModelConfig,
    OptimConfig,
    TrainConfig,
)
from scaling.presets.table import PresetTable

PRESETS = PresetTable()

WMT_VOCAB = 37000  # shared source-target BPE vocabulary of WMT'14 en-de (§5.1)


def _transformer(d_model: int, n_heads: int, d_ff: int, dropout: float) -> Config:
    return Config(
        model=ModelConfig(family="encdec", vocab_size=WMT_VOCAB, n_layers=6, n_decoder_layers=6,
                          d_model=d_model, n_heads=n_heads, d_ff=d_ff, max_len=256,
                          pos_emb="sinusoidal", norm="post", activation="relu",
                          dropout=dropout, attn_dropout=dropout),
        # §5.3: Adam b1 0.9, b2 0.98, eps 1e-9, lr = d^-0.5 · min(s^-0.5, s · 4000^-1.5)
        # (its peak (d · 4000)^-0.5 is optim.lr); §5.4: label smoothing 0.1; 25k tokens a batch.
        optim=OptimConfig(lr=(d_model * 4000) ** -0.5, b2=0.98, eps=1e-9, weight_decay=0.0,
                          warmup_steps=4000, schedule="rsqrt", label_smoothing=0.1),
        train=TrainConfig(steps=100_000, global_batch=128, seq_len=256),
    )


PRESETS.add("transformer-base")(lambda: _transformer(512, 8, 2048, 0.1))
PRESETS.add("transformer-big")(lambda: _transformer(1024, 16, 4096, 0.3))


@PRESETS.add("transformer-tiny")
def transformer_tiny() -> Config:
    """A CPU-size encoder-decoder that learns English -> German on the generated CLDR corpus
    (scaling/data/sources/translation.py) in minutes on 2 CPU cores: the paper's recipe (rsqrt
    schedule, label smoothing 0.1, Adam b2 0.98) at a small width; sentences are short, so
    the training rows are 32 tokens while decoding may use all 128 positions."""
    return Config(
        model=ModelConfig(family="encdec", vocab_size=2048, n_layers=2, n_decoder_layers=2,
                          d_model=128, n_heads=4, d_ff=512, max_len=128, pos_emb="sinusoidal",
                          norm="post", activation="relu"),
        data=DataConfig(source="cldr:en-de"),
        mesh=MeshConfig(data=2, fsdp=2, tensor=2),
        optim=OptimConfig(lr=2e-3, b2=0.98, eps=1e-9, weight_decay=0.0, warmup_steps=300,
                          schedule="rsqrt", label_smoothing=0.1),
        train=TrainConfig(steps=2500, global_batch=64, seq_len=32, eval_every=500,
                          eval_batches=4, eval_bleu=128, checkpoint_every=500),
    )
