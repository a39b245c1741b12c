using Compiled.Nets.Kernels;

namespace Compiled.Nets.Runtime.Tests.Kernels;

/// <summary>A convolution with its 2×2 max-pool fused into the Winograd output transform must equal the two kernels run
/// one after the other, bit for bit: values, argmax (ties and NaNs included) and the optional ReLU.</summary>
public class ConvPoolFusionTests
{
    [Theory]
    [InlineData(5, 64, 14, 14, 128, 1, true, true)]    // the ConvNet's conv2 (several chunks, a partial last one)
    [InlineData(1, 64, 14, 14, 128, 1, true, false)]   // one image: output-channel blocks on the two cores, 49 tiles
    [InlineData(3, 16, 10, 22, 20, 1, false, true)]    // no bias; segments of 7 and 4 tiles
    [InlineData(2, 17, 12, 8, 23, 0, true, true)]      // padding 0: a 10×6 output
    [InlineData(2, 16, 9, 9, 18, 1, true, true)]       // odd output: the unfused fallback
    [InlineData(2, 3, 8, 8, 16, 1, true, true)]        // three input channels: the direct kernel's pooled rows
    [InlineData(3, 1, 28, 28, 9, 1, true, true)]       // the ConvNet's conv1 shape: two vectors a row, 14 windows
    [InlineData(1, 2, 40, 42, 5, 2, false, false)]     // one image (one core), padding 2: three vectors a row (the last alone)
    [InlineData(1, 3, 32, 32, 64, 1, true, true)]      // one image of 3×32×32 (196 k multiply-adds): 32 + 32 channels on the two cores
    [InlineData(1, 4, 30, 30, 10, 1, false, true)]     // one image split 4 + 6 channels (a group of two on the second core)
    [InlineData(2, 4, 12, 34, 6, 0, true, false)]      // padding 0: a 32-wide output, exactly two vectors
    [InlineData(2, 1, 9, 9, 4, 1, true, true)]         // odd output: the direct kernel's unfused fallback
    public void ConvThenMaxPool_Fused_EqualsTheTwoKernels(int b, int c, int h, int w, int o, int p, bool bias, bool relu)
    {
        var g = new Conv2dGeometry(b, c, h, w, o, 3, 3, 1, 1, p, p, 1, 1);
        var pg = new Pool2dGeometry(b, o, g.OutHeight, g.OutWidth, 2, 2, 2, 2);
        var r = new Rng(41);
        // Values from a small set make ties between a window's four outputs common; a NaN too.
        var x = Enumerable.Range(0, b * g.InSize).Select(_ => (float)(r.NextInt(5) - 2) * 0.25f).ToArray();
        x[x.Length / 2] = float.NaN;
        var wt = Enumerable.Range(0, g.WeightSize).Select(_ => (float)(r.NextInt(3) - 1) * 0.5f).ToArray();
        var bs = bias ? Enumerable.Range(0, o).Select(_ => r.NextFloat() - 0.5f).ToArray() : [];
        var scratch = new float[Conv2dKernels.ScratchSize(g)];

        var convOut = new float[b * g.OutSize];
        Conv2dKernels.Forward(convOut, x, wt, bs, g, scratch, null);
        var expected = new float[b * pg.OutSize]; var expectedArg = new int[expected.Length];
        PoolingKernels.MaxPool2dForward(expected, expectedArg, convOut, pg, relu);

        var pooled = Enumerable.Repeat(float.NaN, expected.Length).ToArray(); var arg = new int[expected.Length];
        var fallback = new float[convOut.Length];
        Conv2dKernels.ForwardMaxPool2x2(pooled, arg, x, wt, bs, g, scratch, new Conv2dWeightCache(), fallback, relu);
        Assert.Equal(expected, pooled);
        Assert.Equal(expectedArg, arg);
        Assert.Contains(expectedArg, i => i % 2 == 1);   // not every winner is a window's first input

        // Inference: no argmax.
        var again = new float[expected.Length];
        Conv2dKernels.ForwardMaxPool2x2(again, default, x, wt, bs, g, scratch, null, fallback, relu);
        Assert.Equal(expected, again);
    }
}
