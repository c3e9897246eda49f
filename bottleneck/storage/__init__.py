"""Storage: every byte the tool reads or writes goes through this stage.

``atomic`` (temp name, fsync, rename; sha256; JSON), ``hdf5`` (the HDF5 writer that keeps its
first write error, and the one HDF5 reader, which checks a file's structure before use),
``names`` (file names compared in one Unicode form), ``machine`` (the user's-machine I/O
errors as one line), ``ours`` (the markers of our outputs) and ``lock`` (one writer per cache).
Importing this package imports nothing heavy: local paths stay the fast path.
"""
