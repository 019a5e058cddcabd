"""Duplicate detection (contract section 8), beside the import path: after a batch is stored,
its references are compared with the store on their bibliographic records and decided.

`keys` normalises records into keys, `pairs` finds and scores candidate pairs, `stars` turns
pairs into stars and decisions. It reads the store and writes decisions through `store`; it
never touches the import's data path.
"""
