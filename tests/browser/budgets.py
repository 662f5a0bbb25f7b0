"""Small-budget parameters per notebook, shared by the headless notebook tests and the browser test."""

BUDGETS: dict[str, dict] = {}
