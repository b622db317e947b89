"""Item-transition graph: per-user event sequences -> graph_nodes, graph_edges."""

from __future__ import annotations

from pipelines.graph.transitions import TransitionGraph, build_graph

__all__ = ["TransitionGraph", "build_graph"]
