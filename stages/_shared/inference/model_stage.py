"""`ModelStage`: what every stage that runs a local model shares."""

from __future__ import annotations

from pipeline.stage import Stage
from stages._shared.inference.options import MODEL_PACKAGES


class ModelStage(Stage):
    """A stage whose config is a `ModelOptions` and whose worker loads a model in `setup()`
    into `self._inference`. The model never travels with the stage: each worker loads its
    own; the config decides the worker's CPUs and GPUs; the `models` extra must be installed."""

    def __getstate__(self):
        return dict(self.__dict__, _inference=None)

    def resources(self):
        return self.config.resources()

    def packages(self):
        return MODEL_PACKAGES
