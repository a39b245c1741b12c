using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Compiled.Nets.Gpu;

// nn.Embedding on the device: a gather forward; backward gives each position a group, and the group of an id's first
// position sums the gradient rows of all its positions in position order into the id's row — repeated ids meet in one
// row without atomics, so the sum is the same every run (PyTorch sorts the ids for the same reason).
public sealed partial class GpuKernels
{
    private Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int>? _embedding;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int, int>? _embeddingBackward;
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
    /// nn.Embedding(padding_idx=…) keeps it; each row's terms added in position order.</summary>
    public void EmbeddingBackward(ArrayView<float> dtable, ArrayView<float> dy, ArrayView<int> ids, int count, int dim, int paddingIdx)
    {
        Need(dy, (long)count * dim, nameof(dy));
        if (ids.Length < count) throw new ArgumentException($"Embedding: {ids.Length} ids on the device, {count} needed.", nameof(ids));
        if (count == 0) return;
        _embeddingBackward ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int, int>(EmbeddingBackwardKernel);
        Launched(); _embeddingBackward(RowConfig(count, dim), dtable, dy, ids, count, dim, paddingIdx);
    }

    private static void EmbeddingKernel(Index1D index, ArrayView<float> y, ArrayView<int> ids, ArrayView<float> table, int dim)
    {
        int i = index;
        y[i] = table[(long)ids[i / dim] * dim + i % dim];
    }

    /// <summary>Position Grid.IdxX: when no earlier position holds its id, its threads sum the id's positions' gradient
    /// rows from here on, each thread every Group.DimX-th value of the row.</summary>
    private static void EmbeddingBackwardKernel(ArrayView<float> dtable, ArrayView<float> dy, ArrayView<int> ids, int count, int dim, int paddingIdx)
    {
        int p = Grid.IdxX, id = ids[p];
        if (id == paddingIdx) return;
        float earlier = 0f;
        for (int q = Group.IdxX; q < p; q += Group.DimX)
            if (ids[q] == id) earlier = 1f;
        if (GroupSum(earlier) > 0f) return; // an earlier position's group sums this id
        long row = (long)id * dim;
        for (int d = Group.IdxX; d < dim; d += Group.DimX)
        {
            float s = 0f;
            for (int q = p; q < count; q++)
                if (ids[q] == id) s += dy[(long)q * dim + d];
            dtable[row + d] += s;
        }
    }
}
