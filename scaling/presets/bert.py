"""BERT presets (Devlin et al. 2019 §3): post-LN bidirectional encoders, WordPiece vocab 30522."""

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

BERT_VOCAB = 30522


def _bert(n_layers: int, d_model: int, n_heads: int) -> Config:
    return Config(
        model=ModelConfig(family="bert", vocab_size=BERT_VOCAB, n_layers=n_layers,
                          d_model=d_model, n_heads=n_heads, d_ff=4 * d_model, max_len=512,
                          norm="post", ln_eps=1e-12, activation="gelu"),  # exact, as released
        data=DataConfig(nsp=True),  # §3.1: masked LM + next-sentence prediction
        # §A.2: Adam lr 1e-4, b1 0.9, b2 0.999, L2 0.01, 10k warmup, 1M steps of 256 x 512.
        optim=OptimConfig(lr=1e-4, b2=0.999, eps=1e-6, weight_decay=0.01, warmup_steps=10_000),
        train=TrainConfig(steps=1_000_000, global_batch=256, seq_len=512),
    )


PRESETS.add("bert-base")(lambda: _bert(12, 768, 12))
PRESETS.add("bert-large")(lambda: _bert(24, 1024, 16))


@PRESETS.add("bert-tiny")
def bert_tiny() -> Config:
    """A CPU-size BERT for tests and demos."""
    return Config(
        model=ModelConfig(family="bert", vocab_size=2048, n_layers=2, d_model=128, n_heads=2,
                          d_ff=512, max_len=128, norm="post", ln_eps=1e-12,
                          activation="gelu"),
        data=DataConfig(source="embedded", nsp=True),
        mesh=MeshConfig(data=2, fsdp=2, tensor=2),
        optim=OptimConfig(lr=1e-3, b2=0.999, weight_decay=0.01, warmup_steps=30),
        train=TrainConfig(steps=300, global_batch=32),
    )
