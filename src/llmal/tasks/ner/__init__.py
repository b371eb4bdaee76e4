"""Named-entity recognition (sequence labelling): sentences, BIO tags, entity spans, CRF and
token-classification taggers, sequence strategies and seqeval metrics."""
