"""Sliding-window prediction, export, ensembling, postprocessing and evaluation.

Public API::

    Predictor, PredictOptions           load a model folder once, predict many images (segkit.infer.predictor)
    predict_folder, BatchOptions        what segkit-predict runs (segkit.infer.batch)
    load_model_folder(s), ModelSetup    segkit or nnU-Net v2 model folders (segkit.infer.model_folder)
    case_metrics, evaluate_folders      Dice, IoU, NSD, HD95 (segkit.infer.metrics, segkit.infer.evaluate)
    PostprocessingPlan                  largest-component postprocessing (segkit.infer.postprocessing)
    ensemble_folders                    average saved probabilities (segkit.infer.ensemble)
    convert_nnunet_folder, export_model_folder, import_model_folder
"""

from segkit.io.lazy import lazy_exports

_EXPORTS = {
    "export_model_folder": "archive", "import_model_folder": "archive",
    "BatchOptions": "batch", "predict_folder": "batch",
    "convert_nnunet_folder": "convert",
    "ensemble_folders": "ensemble",
    "EvaluationError": "errors", "InferError": "errors", "InputMismatchError": "errors", "ModelLoadError": "errors",
    "OutputError": "errors",
    "EvaluateOptions": "evaluate", "evaluate_folders": "evaluate",
    "ClassMetrics": "metrics", "case_metrics": "metrics", "class_metrics": "metrics",
    "LoadedModel": "model_folder", "load_model_folder": "model_folder", "load_model_folders": "model_folder",
    "ModelSetup": "model_setup",
    "PostprocessingPlan": "postprocessing", "apply_postprocessing": "postprocessing",
    "determine_postprocessing": "postprocessing",
    "PredictOptions": "predictor", "Predictor": "predictor",
    "Precision": "runtime",
}
__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
