"""Physics engines behind one interface (:mod:`mimickit.engines.engine`), one module per simulator."""
