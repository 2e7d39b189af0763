"""Training: AutoKeras teacher search, students, distillation, ONNX export, bundle writing, evaluation.

These modules import TensorFlow/Keras (except ``evaluate``); retrieval never imports this package.
"""
