//! XOR chunks and TSDB blocks.
