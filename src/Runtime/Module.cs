// stackalloc'd scratch in the kernels is always written before it is read; zeroing it cost more than the work in
// small calls (a 6×64 edge tile's 1.5 KB buffer took ~10 % of a batch-1 forward).
[module: System.Runtime.CompilerServices.SkipLocalsInit]
