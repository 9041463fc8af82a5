"""Pollution-source and EIA disclosure: the data model and every way of writing it.

Pure (no I/O but reading files): ``credit_code`` (GB 32100 / GB 11714), ``catalog`` (the
categories and sub-items from TOML), ``fields`` + ``models`` (validated inputs from JSON or
CSV), ``uploads`` (file types by their bytes, safe names, download headers), ``tokens``
(bearer tokens), ``serialize`` (rows to JSON, cursors). Writing, always audited in the same
transaction: ``service`` (used by the admin API, the importer and the seed), ``files``
(attachments on disk), ``importer`` (CSV), ``seed`` (the 【示例】 sample data set).
"""
