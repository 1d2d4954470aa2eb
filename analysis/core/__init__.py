"""Statistics of pairwise human judgments: pure numpy/scipy, no Django."""
