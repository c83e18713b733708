"""Options every model stage shares (docs/stages_models.md, "Options of every model stage")."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from pipeline.stage import Resources, StageConfig
from stages._shared.inference.folder import ModelFolder


# What a model stage's workers import, and the extra of curation-pipeline that installs it.
MODEL_PACKAGES = {"torch": "models", "transformers": "models"}


class ModelOptions(StageConfig):
    """Base of a model stage's config. A subclass declares `model` (with its folder check)
    and says which folder it loads in `model_folder()`."""

    max_length: int | None = Field(
        None, ge=2, description="tokens read per document (the first ones); default: the "
        "model's limit")
    batch_tokens: int = Field(
        16384, ge=16, description="padded tokens per forward pass: documents are sorted by "
        "length and cut into batches under this budget")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="auto: float32 on the CPU, bfloat16 (or float16) on a GPU")
    gpus: float = Field(0, ge=0, description="GPUs per worker; 0 runs on the CPU; a fraction "
                        "(0.25) lets several workers share one GPU")
    cpus: float = Field(1, gt=0, description="CPUs per worker (torch threads on the CPU)")

    @field_validator("gpus")
    @classmethod
    def _whole_gpus_above_one(cls, value: float) -> float:
        if value > 1 and not float(value).is_integer():
            raise ValueError("more than one GPU per worker must be a whole number; fractions "
                             "below 1 share a GPU between workers")
        return value

    @model_validator(mode="after")
    def _max_length_fits_the_model(self):
        folder = self.model_folder()
        limit = folder.max_length if folder is not None else None
        if self.max_length is not None and limit is not None and self.max_length > limit:
            raise ValueError(f"max_length {self.max_length} is more than the model takes "
                             f"({limit} tokens); lower it or leave it out")
        return self

    def model_folder(self) -> ModelFolder | None:
        """The checked folder this config loads; None when it loads no Hugging Face model."""
        raise NotImplementedError

    def device(self) -> str:
        return "cuda" if self.gpus else "cpu"

    def resources(self) -> Resources:
        return Resources(cpus=self.cpus, gpus=self.gpus)
