//! Analysis and figures: histogram merging, percentiles with CIs, polars frames (parquet, CSV), plotters figures
