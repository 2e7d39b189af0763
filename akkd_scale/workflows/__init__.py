"""Workflows built on the retrieval runtime: the demo (simulates scenes) and regional adaptation (trains students).

They may use ``simulate``, ``training`` and ``pipeline``; nothing in the retrieval runtime imports them.
"""
