namespace Compiled.Nets;

/// <summary>
/// An eager tensor with a tape for reverse-mode autodiff: the slow, obvious reference path. A network's user-written
/// <c>Forward(Tensor)</c> runs on it; the source generator reads the same method as the specification of the compiled
/// code, and tests check the two agree. Shapes include the batch dimension first.
/// </summary>
public sealed partial class Tensor
{
    /// <summary>A float tensor over <paramref name="data"/> (not copied) with the given full shape.</summary>
    public Tensor(float[] data, params int[] shape) => throw new NotImplementedException();

    /// <summary>An integer tensor of token ids (input of an <see cref="Embedding"/>).</summary>
    public static Tensor FromIds(int[] ids, params int[] shape) => throw new NotImplementedException();

    /// <summary>Full shape, batch first.</summary>
    public int[] Shape { get; private set; } = [];
    /// <summary>Values (row-major).</summary>
    public float[] Data { get; private set; } = [];
    /// <summary>Token ids when this is an id tensor.</summary>
    public int[]? Ids { get; private set; }
    /// <summary>The gradient after <see cref="Backward"/>, when this tensor took part in it.</summary>
    public float[]? Grad { get; internal set; }

    public Tensor Apply(ILayer layer) => throw new NotImplementedException();
    public Tensor Apply(IReadOnlyList<ILayer> layers) => throw new NotImplementedException();
    public Tensor Relu() => throw new NotImplementedException();
    public Tensor Gelu() => throw new NotImplementedException();
    public Tensor Tanh() => throw new NotImplementedException();
    public Tensor Sigmoid() => throw new NotImplementedException();
    public Tensor Softmax() => throw new NotImplementedException();
    public Tensor Flatten() => throw new NotImplementedException();
    public Tensor MaxPool2d(int kernel, int stride = 0, int padding = 0) => throw new NotImplementedException();
    public Tensor AvgPool2d(int kernel, int stride = 0, int padding = 0) => throw new NotImplementedException();
    public Tensor Dropout(double p) => throw new NotImplementedException();
    public static Tensor operator +(Tensor a, Tensor b) => throw new NotImplementedException();
    public Tensor CrossEntropy(int[] labels, float labelSmoothing = 0f) => throw new NotImplementedException();
    public Tensor Mse(Tensor target) => throw new NotImplementedException();
    public void Backward() => throw new NotImplementedException();
}
