"""Importing lat-lon fields from NetCDF or Zarr files into training stores (`climdiff data import`).

* :mod:`~climdiff.data.importing.sources` - opening files, finding the variable and its
  dimensions, one regular gap-free time series across files;
* :mod:`~climdiff.data.importing.units` - units via udunits; precipitation amounts vs rates;
* :mod:`~climdiff.data.importing.daily` - which day a step belongs to; daily sums and means;
* :mod:`~climdiff.data.importing.regrid` - to climdiff's lat-lon convention, optionally coarser,
  conserving area means;
* :mod:`~climdiff.data.importing.run` - the plan (all checks before writing) and the resumable store.
"""
