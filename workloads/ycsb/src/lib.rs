//! YCSB CoreWorkload-compatible key and operation generator (scrambled Zipfian, Zipfian, uniform; workloads A-F)
