"""Sliding-window prediction, export, ensembling, postprocessing and evaluation.

Public API::

    Predictor, PredictOptions           load a model folder once, predict many images (segkit.infer.predictor)
    predict_folder, BatchOptions        what segkit-predict runs (segkit.infer.batch)
    load_model_folder, ModelSetup       segkit or nnU-Net v2 model folders (segkit.infer.model_folder)
    case_metrics, evaluate_folders      Dice, IoU, NSD, HD95 (segkit.infer.metrics, segkit.infer.evaluate)
    PostprocessingPlan                  largest-component postprocessing (segkit.infer.postprocessing)
    ensemble_folders                    average saved probabilities (segkit.infer.ensemble)
    convert_nnunet_folder, export_model_folder, import_model_folder
"""

from segkit.infer.archive import export_model_folder, import_model_folder
from segkit.infer.batch import BatchOptions, predict_folder
from segkit.infer.convert import convert_nnunet_folder
from segkit.infer.ensemble import ensemble_folders
from segkit.infer.errors import EvaluationError, InferError, InputMismatchError, ModelLoadError, OutputError
from segkit.infer.evaluate import EvaluateOptions, evaluate_folders
from segkit.infer.metrics import ClassMetrics, case_metrics, class_metrics
from segkit.infer.model_folder import LoadedModel, load_model_folder
from segkit.infer.model_setup import ModelSetup
from segkit.infer.postprocessing import PostprocessingPlan, apply_postprocessing, determine_postprocessing
from segkit.infer.predictor import PredictOptions, Predictor
from segkit.infer.runtime import Precision

__all__ = [
    "BatchOptions", "ClassMetrics", "EvaluateOptions", "EvaluationError", "InferError", "InputMismatchError",
    "LoadedModel", "ModelLoadError", "ModelSetup", "OutputError", "PostprocessingPlan", "Precision", "PredictOptions",
    "Predictor", "apply_postprocessing", "case_metrics", "class_metrics", "convert_nnunet_folder",
    "determine_postprocessing", "ensemble_folders", "evaluate_folders", "export_model_folder", "import_model_folder",
    "load_model_folder", "predict_folder",
]
