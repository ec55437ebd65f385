"""MoDex (neural internal models + bidirectional CEM planning): data, models, planners."""
