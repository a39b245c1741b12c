using System.Collections;

namespace Compiled.Nets;

/// <summary>
/// The tensors <see cref="Tensor.Chunk"/> and <see cref="Tensor.Split(int, int)"/> return, in order: indexable and
/// deconstructible like PyTorch's tuple (<c>var (q, k, v) = x.Chunk(3, -1);</c>).
/// </summary>
public sealed class TensorPieces : IReadOnlyList<Tensor>
{
    private readonly Tensor[] _pieces;

    internal TensorPieces(Tensor[] pieces) => _pieces = pieces;

    /// <summary>How many pieces there are.</summary>
    public int Count => _pieces.Length;

    /// <summary>Piece <paramref name="index"/>.</summary>
    public Tensor this[int index] => _pieces[index];

    /// <inheritdoc/>
    public IEnumerator<Tensor> GetEnumerator() => ((IEnumerable<Tensor>)_pieces).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => _pieces.GetEnumerator();

    /// <summary>Two pieces.</summary>
    /// <exception cref="InvalidOperationException">When there are not two.</exception>
    public void Deconstruct(out Tensor a, out Tensor b) { Expect(2); (a, b) = (_pieces[0], _pieces[1]); }

    /// <summary>Three pieces.</summary>
    /// <exception cref="InvalidOperationException">When there are not three.</exception>
    public void Deconstruct(out Tensor a, out Tensor b, out Tensor c) { Expect(3); (a, b, c) = (_pieces[0], _pieces[1], _pieces[2]); }

    /// <summary>Four pieces.</summary>
    /// <exception cref="InvalidOperationException">When there are not four.</exception>
    public void Deconstruct(out Tensor a, out Tensor b, out Tensor c, out Tensor d) { Expect(4); (a, b, c, d) = (_pieces[0], _pieces[1], _pieces[2], _pieces[3]); }

    private void Expect(int n)
    {
        if (_pieces.Length != n) throw new InvalidOperationException($"Deconstructed into {n} tensors, but the split gave {_pieces.Length} pieces.");
    }
}

/// <summary>How torch.chunk and torch.split cut a dimension; the generator applies the same rule at build time, and the
/// compiled-vs-eager tests hold the two together.</summary>
internal static class SplitSizes
{
    /// <summary>⌈size / chunks⌉ per piece, the last smaller; fewer than <paramref name="chunks"/> when they are not needed.</summary>
    public static int[] OfChunks(int size, int chunks) => OfSize(size, (size + chunks - 1) / chunks);

    /// <summary>Pieces of <paramref name="piece"/>, the last smaller.</summary>
    public static int[] OfSize(int size, int piece)
    {
        var sizes = new List<int>();
        for (int start = 0; start < size; start += piece) sizes.Add(Math.Min(piece, size - start));
        return sizes.ToArray();
    }
}
