"""Model code and shipped model artifacts (language identification; toxicity classifiers)."""
