"""Adapters turn what users store into what the core takes.

- :mod:`~segqual_fo.adapters.probs`: probability files (.npy/.npz) and
  arrays in (K,H,W) or (H,W,K) layout, logits, quantised, low resolution;
- :mod:`~segqual_fo.adapters.masks`: label masks with mask targets, RGB
  masks, class lists and ignore values;
- :mod:`~segqual_fo.adapters.labels`: mask files and instance labels
  (FiftyOne's Detections, as plain records) to label masks;
- :mod:`~segqual_fo.adapters.coco`: COCO annotations via pycocotools.

None of them imports FiftyOne: Dask workers use them.
"""
