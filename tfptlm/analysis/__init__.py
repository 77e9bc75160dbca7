"""Tools that examine trained models: robustness, bias, explanations and memorization audits."""
