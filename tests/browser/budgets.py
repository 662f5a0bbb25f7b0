"""Small-budget parameters per notebook for the browser test (the headless notebook tests use the
same sizes): enough to exercise every cell and widget in seconds, not to produce results."""

BUDGETS: dict[str, dict] = {
    "01_translation_barrier.ipynb": dict(
        SOURCES=["es"], TARGETS=["en", "hi", "sw"], N_CONCEPTS=4, N_EXAMPLES=24, LENS="tuned", TUNED_STEPS=3,
        JACOBIAN_WINDOWS=4, MAX_NEW_TOKENS=3,
    ),
    "02_lorsa_heads.ipynb": dict(CTX=48, N_TRAIN_SEQ=24, N_EVAL_SEQ=8, EXPANSION=2, TOP_K=4, THREADS=1, N_RANDOM=16,
                                 FRESH_PROBES=2, AUTHORS_EVAL_SEQ=4, AUTHORS_CTX=64),
    "03_corrsteer.ipynb": dict(N_SAMPLES=48, N_TRAIN=24, N_VAL=8, N_RANDOM=1, BATCH_SIZE=24, SAE_TRAIN_TOKENS=20_000),
    "04_thr_attribution.ipynb": dict(N_PROMPTS=3, GROUP_SIZE=4, STEPS=1, PROMPTS_PER_STEP=2, EVAL_SAMPLES=0,
                                     LOG_STEPS=1),
}
