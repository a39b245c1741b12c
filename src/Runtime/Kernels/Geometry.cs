namespace Compiled.Nets.Kernels;

/// <summary>Sizes of a 2-D convolution over NCHW tensors (PyTorch's formula for the output size).</summary>
public readonly record struct Conv2dGeometry(
    int Batch, int InChannels, int InHeight, int InWidth, int OutChannels, int KernelH, int KernelW,
    int StrideH = 1, int StrideW = 1, int PadH = 0, int PadW = 0, int DilationH = 1, int DilationW = 1)
{
    /// <summary>Output height: (H + 2p − d(k−1) − 1) / s + 1.</summary>
    public int OutHeight => (InHeight + 2 * PadH - DilationH * (KernelH - 1) - 1) / StrideH + 1;
    /// <summary>Output width.</summary>
    public int OutWidth => (InWidth + 2 * PadW - DilationW * (KernelW - 1) - 1) / StrideW + 1;
    /// <summary>Floats per input sample.</summary>
    public int InSize => InChannels * InHeight * InWidth;
    /// <summary>Floats per output sample.</summary>
    public int OutSize => OutChannels * OutHeight * OutWidth;
    /// <summary>Floats in the weight [OutChannels, InChannels, KernelH, KernelW].</summary>
    public int WeightSize => OutChannels * InChannels * KernelH * KernelW;
}

/// <summary>Sizes of a 2-D pooling over NCHW tensors (floor mode, as PyTorch's default).</summary>
public readonly record struct Pool2dGeometry(
    int Batch, int Channels, int InHeight, int InWidth, int KernelH, int KernelW, int StrideH, int StrideW, int PadH = 0, int PadW = 0)
{
    /// <summary>Output height: (H + 2p − k) / s + 1.</summary>
    public int OutHeight => (InHeight + 2 * PadH - KernelH) / StrideH + 1;
    /// <summary>Output width.</summary>
    public int OutWidth => (InWidth + 2 * PadW - KernelW) / StrideW + 1;
    /// <summary>Floats per input sample.</summary>
    public int InSize => Channels * InHeight * InWidth;
    /// <summary>Floats per output sample.</summary>
    public int OutSize => Channels * OutHeight * OutWidth;
}
