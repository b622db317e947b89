"""The learned ranker: per-(user, candidate) features on Spark (`features.py`), fitting on the
driver from a bounded sample (`fit.py`), the model folder of a run (`artifact.py`) and
distributed scoring into rankings (`score.py`). The fit pass that supplies its labels is
orchestrated by the fit_ranker stage (pipelines/stages/fit_ranker.py).
"""
