"""Pure model computations: numpy, pandas, scikit-learn and shap only.

Nothing in this package imports dash, flask or the data layer; a test
(`tests/ml/test_purity.py`) proves it.
"""
