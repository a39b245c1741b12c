using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Compiled.Nets.Gpu;

// nn.Embedding on the device: a gather forward; backward adds each position's gradient row into its id's row with an
// atomic add per value (what GPU frameworks do: repeated ids meet in one row; the order of the additions may vary).
public sealed partial class GpuKernels
{
    private Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int>? _embedding;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int>? _embeddingBackward;
    private Action<Index1D, ArrayView<float>, ArrayView<int>, int>? _oneHot;

    /// <summary>y[n, :] = the one-hot row of ids[n] over <paramref name="classes"/> (F.one_hot as floats; ids checked on the host).</summary>
    public void OneHot(ArrayView<float> y, ArrayView<int> ids, int count, int classes)
    {
        Need(y, (long)count * classes, nameof(y));
        if (ids.Length < count) throw new ArgumentException($"OneHot: {ids.Length} ids on the device, {count} needed.", nameof(ids));
        _oneHot ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, int>(OneHotKernel);
        Launched(); _oneHot(checked(count * classes), y, ids, classes);
    }

    private static void OneHotKernel(Index1D index, ArrayView<float> y, ArrayView<int> ids, int classes)
    {
        int i = index;
        y[i] = ids[i / classes] == i % classes ? 1f : 0f;
    }

    /// <summary>y[n, :] = table[ids[n], :] for <paramref name="count"/> ids (checked on the host before they came up).</summary>
    public void EmbeddingForward(ArrayView<float> y, ArrayView<int> ids, ArrayView<float> table, int count, int dim)
    {
        Need(y, (long)count * dim, nameof(y));
        if (ids.Length < count) throw new ArgumentException($"Embedding: {ids.Length} ids on the device, {count} needed.", nameof(ids));
        _embedding ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int>(EmbeddingKernel);
        Launched(); _embedding(checked(count * dim), y, ids, table, dim);
    }

    /// <summary>dtable[ids[n], :] += dy[n, :], leaving out the row <paramref name="paddingIdx"/> (−1: none), as
    /// nn.Embedding(padding_idx=…) keeps it.</summary>
    public void EmbeddingBackward(ArrayView<float> dtable, ArrayView<float> dy, ArrayView<int> ids, int count, int dim, int paddingIdx)
    {
        Need(dy, (long)count * dim, nameof(dy));
        _embeddingBackward ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int>(EmbeddingBackwardKernel);
        Launched(); _embeddingBackward(checked(count * dim), dtable, dy, ids, dim, paddingIdx);
    }

    private static void EmbeddingKernel(Index1D index, ArrayView<float> y, ArrayView<int> ids, ArrayView<float> table, int dim)
    {
        int i = index;
        y[i] = table[(long)ids[i / dim] * dim + i % dim];
    }

    private static void EmbeddingBackwardKernel(Index1D index, ArrayView<float> dtable, ArrayView<float> dy, ArrayView<int> ids, int dim, int paddingIdx)
    {
        int i = index;
        int id = ids[i / dim];
        if (id != paddingIdx) Atomic.Add(ref dtable[(long)id * dim + i % dim], dy[i]);
    }
}
