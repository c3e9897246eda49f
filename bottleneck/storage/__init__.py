"""Storage: every byte the tool reads or writes goes through this stage.

``atomic`` (temp name, fsync, rename; sha256; JSON), ``hdf5`` (the HDF5 writer that keeps its
first write error, and the one HDF5 reader, which checks a file's structure before use),
``names`` (file names compared in one Unicode form), ``machine`` (the user's-machine I/O
errors as one line), ``ours`` (the markers of our outputs) and ``lock`` (one writer per cache).
Locations that are URLs: ``location`` (resolve once: a Path, or fsspec with its options;
redaction; store errors as one line), ``remote_files`` (whole-file uploads and downloads, the
sha256-keyed read-through cache), ``remote_lock`` (the conditional lock object),
``remote_output`` (folders of ours at a URL), ``remote_file`` (an object seen as a file by
freshness checks). Importing this package imports nothing heavy: local paths stay the fast
path and never load fsspec.
"""
