"""The browser edges: the only modules that touch ``js`` or ``pyodide``.

``worker`` builds the router in the Web Worker from the pieces below and speaks the protocol;
``transformers_js`` is the on-device runtime; ``transport_pyfetch`` the HTTP transport; ``store_idb`` and
``index_store_idb`` the IndexedDB stores of the model cache and the vector indexes; ``jsinterop`` what they
share. Import them only inside Pyodide (``transport_pyfetch`` and ``jsinterop`` import nothing from the
browser until they are used, so they are unit-tested in CPython with fakes).
"""
