"""Pure, synchronous text functions: normalise, segment, classify, extract. No I/O."""
