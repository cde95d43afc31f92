"""One bound per quantity a user can ask for, checked where the request is read, so that a
typo (10^6 labels, a beam of 10^4, 10^23 steps) is one line instead of an out-of-memory
traceback or a job that never ends. The table is in docs/reliability.md ("Bounds").
"""

MAX_STEPS = 10**9  # train.steps: GPT-3 175B took ~93k steps; 10^9 is beyond any real run
MAX_TOKENS = 10**15  # sweep token budgets: 50x Chinchilla 70B's 1.4·10^12 tokens... x700
MAX_CLASSES = 10_000  # fine-tuning labels: the head is D x classes
MAX_CHOICES = 64  # multiple-choice choices per example (rows side by side in seq_len)
MAX_BEAM = 64  # translate/eval --beam: the cache grows with it
MAX_BATCH = 4096  # rows decoded or scored together (generate/translate --batch)
MAX_NEW_TOKENS = 4096  # eval task files' max_new_tokens
