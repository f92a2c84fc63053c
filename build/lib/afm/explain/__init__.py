"""explain: everything that reads a trained model and says what it does: per-instance decompositions
(parts), split statistics, FM vs AFM comparisons, instance pickers, function-level interactions, agreement
across model sets, and the Plotly figures that draw them (charts). Nothing here trains.

May import: afm.core, afm.fast, afm.data, afm.models.
"""
