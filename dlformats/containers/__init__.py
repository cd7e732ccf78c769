"""Shared readers and writers of the containers formats are built from, for every plugin to use.

Plugins never import each other, so what several formats read or write lives here:

==============  ==============================================================================
module          what it reads or writes
==============  ==============================================================================
``archive``     zip and tar archives, member by member, in memory: :class:`~.archive.SafeZip`
                (what :meth:`dlformats.Source.zip` gives), :class:`~.archive.SafeTar`,
                :func:`~.archive.refuse_nested`
``jsonio``      strict JSON: :func:`~.jsonio.load_json` (size and depth caps, finite numbers,
                no duplicate keys), :func:`~.jsonio.dump_json`
``codecs``      DeepCell Label's part files: ``cells.json``, ``divisions.json``,
                ``lineage.json``, ``spots.csv``, ``cellTypes.json``, ``embeddings.json``,
                ``channels.json``, parsed into the model and written back as bytes
``tiffio``      TIFFs opened through a guarded tifffile (IFD chain walked first, tifffile's
                complaints turned into errors), series read lazily a page at a time
``npyio``       ``.npy`` headers parsed without unpickling; arrays from bytes, members and
                streams, memory-mapped files; ``.npy`` written block by block
``buffers``     raw typed buffers (``.dat``) whose shape a JSON file declares (the
                browser client's zips)
==============  ==============================================================================

The contract every module here keeps, so that a plugin using them keeps the project's:

* **Typed errors, located.**  Bad input raises a :class:`~dlformats.errors.DLFormatsError`
  subclass naming the file (``path``) and, inside an archive, the ``member``:
  ``CorruptFileError`` for broken content, ``UnsupportedFeatureError`` for valid content
  dlformats does not read, ``LimitExceededError`` for sizes over the
  :class:`~dlformats.limits.Limits`, ``UnsafeArchiveError`` for archives that could
  escape or confuse a reader.  A failure of the machine (an ``OSError`` such as no space,
  permission denied, too many open files) is an ``EnvironmentFailureError``, or is
  raised as is or as the cause (``from exc``) of the typed error, so that the core
  reports it as the machine's failure, never as a corrupt file.
* **Bounded before allocating.**  Declared sizes (an ``.npy`` shape, a TIFF page, a zip
  member, a JSON document) are checked against the limits before anything that size is
  allocated or decompressed.  Nothing is unpickled, nothing is extracted to disk.
* **Lazy arrays are snapshots and thread-safe.**  Arrays read a file through the
  source's one open file (:attr:`dlformats.Source.file`), by position, so planes read
  later or from several threads come from the file that was opened.
* **Light to import.**  numpy, tifffile and the codecs load inside the functions that
  need them.
* **Public names.**  What a module lists in its ``__all__`` is public API; anything else
  is underscored, private, and may change in any release.

Code that one format alone uses belongs in that format's plugin, not here.
"""

__all__ = ["archive", "buffers", "codecs", "jsonio", "npyio", "tiffio"]
