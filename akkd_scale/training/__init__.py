"""Training: the recipe (``recipe.train_suite``), training-set rows (``data``), AutoKeras teacher search, students,
distillation, fusion fitting (``fusion_fit``), ONNX export, bundle writing, evaluation.

``teacher``, ``students``, ``distill``, ``recipe`` and ``tiny_bundle`` import TensorFlow/Keras (``keras_io`` inside
its loader only); ``data``, ``fusion_fit``, ``evaluate``, ``bundle_writer`` and ``onnx_export`` do not. Retrieval
never imports this package.
"""
