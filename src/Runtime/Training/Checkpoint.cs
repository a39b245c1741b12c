using System.Globalization;
using Compiled.Nets.Serialization;

namespace Compiled.Nets.Training;

/// <summary>
/// Checkpoints as safetensors: every parameter and buffer under its state-dict name, optimizer state under
/// <c>optimizer.</c>, metadata as strings. Saved atomically; loading validates names and shapes against the network.
/// </summary>
public static class Checkpoint
{
    private const string OptimizerPrefix = "optimizer.";

    /// <summary>
    /// The first parameter or buffer that shows a diverged run: a NaN or infinite value, or one so large (beyond
    /// ≈ 1.8e19) that its square overflows float32. Null when all are sound.
    /// </summary>
    public static string? FirstUnsound(ParameterStore store)
    {
        foreach (var p in store.All)
        {
            var v = store.ReadValue(p);
            if (float.IsFinite(System.Numerics.Tensors.TensorPrimitives.SumOfSquares(v))) continue;
            int i = 0;
            while (i < v.Length && float.IsFinite(v[i] * v[i])) i++;
            return $"{p.Name}[{i}] = {v[Math.Min(i, v.Length - 1)].ToString("R", CultureInfo.InvariantCulture)}";
        }
        return null;
    }

    /// <summary>Saves parameters, buffers, optional optimizer state and metadata, atomically.</summary>
    /// <exception cref="ArithmeticException">When a value is NaN, infinite or diverged (<see cref="FirstUnsound"/>): such a checkpoint is never written, and the previous file stays.</exception>
    public static void Save(string path, ParameterStore store, Optimizer? optimizer = null, IReadOnlyDictionary<string, string>? metadata = null)
    {
        if (FirstUnsound(store) is { } bad)
            throw new ArithmeticException($"Not saving '{path}': the weights have diverged ({bad}); the previous checkpoint is kept. Lower the learning rate or clip gradients.");
        var tensors = store.All.Select(p => SafeTensor.FromFloats(p.Name, p.Shape.ToArray(), store.ReadValue(p))).ToList();
        if (optimizer is not null)
            foreach (var (name, data) in optimizer.ExportState())
                tensors.Add(SafeTensor.FromFloats(OptimizerPrefix + name, [data.Length], data));
        var meta = new Dictionary<string, string>(metadata ?? new Dictionary<string, string>(), StringComparer.Ordinal) { ["format"] = "compiled-nets-checkpoint-v1" };
        SafeTensorsFile.Write(path, tensors, meta);
    }

    /// <summary>
    /// Loads a checkpoint into <paramref name="store"/> (and the optimizer); returns its metadata. Everything is
    /// checked before anything is changed: on any error the store and the optimizer are as they were.
    /// </summary>
    /// <exception cref="InvalidDataException">Lists every missing, unexpected and mismatched tensor, naming the file;
    /// or a non-finite value, or optimizer state that does not fit the optimizer.</exception>
    /// <exception cref="InvalidOperationException">The store is read-only (<see cref="ParameterStore.MakeWritable"/> first).</exception>
    public static IReadOnlyDictionary<string, string> Load(string path, ParameterStore store, Optimizer? optimizer = null)
    {
        if (store.IsReadOnly) throw new InvalidOperationException($"Cannot load '{path}' into a read-only parameter store; call MakeWritable() first.");
        var (tensors, metadata) = SafeTensorsFile.Read(path);
        var byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var problems = new List<string>();
        foreach (var p in store.All)
        {
            if (!byName.TryGetValue(p.Name, out var t)) { problems.Add($"missing {p.Name} {p.ShapeText}"); continue; }
            if (!t.Shape.SequenceEqual(p.Shape)) problems.Add($"{p.Name}: checkpoint [{string.Join(", ", t.Shape)}] vs network {p.ShapeText}");
        }
        foreach (var t in tensors)
            if (!t.Name.StartsWith(OptimizerPrefix, StringComparison.Ordinal) && !store.TryGet(t.Name, out _))
                problems.Add($"unexpected {t.Name} [{string.Join(", ", t.Shape)}]");
        if (problems.Count > 0)
            throw new InvalidDataException($"Checkpoint '{path}' does not fit this network: {string.Join("; ", problems)}.");
        var all = store.All.ToList();
        // Float32 tensors are read in place (what Save writes); other dtypes are converted once.
        var converted = all.Select(p => byName[p.Name].DType == SafeTensorDType.F32 && BitConverter.IsLittleEndian ? null : byName[p.Name].ToFloats()).ToList();
        ReadOnlySpan<float> Values(int i) => converted[i] ?? System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(byName[all[i].Name].Bytes);
        for (int i = 0; i < all.Count; i++)
        {
            var v = Values(i);
            // A finite sum proves every value finite (NaN and infinity propagate); only otherwise look for the culprit.
            if (float.IsFinite(System.Numerics.Tensors.TensorPrimitives.Sum(v))) continue;
            int bad = 0;
            while (bad < v.Length && float.IsFinite(v[bad])) bad++;
            if (bad < v.Length) throw new InvalidDataException($"Checkpoint '{path}': {all[i].Name}[{bad}] is {v[bad]}; a checkpoint never holds non-finite weights.");
        }
        if (optimizer is not null)
        {
            var state = tensors.Where(t => t.Name.StartsWith(OptimizerPrefix, StringComparison.Ordinal))
                .ToDictionary(t => t.Name.Substring(OptimizerPrefix.Length), t => t.ToFloats(), StringComparer.Ordinal);
            // Import into the optimizer first (it checks every entry); on failure put its old state back.
            var previous = optimizer.ExportState().ToDictionary(e => e.Name, e => (float[])e.Data.Clone(), StringComparer.Ordinal);
            try { optimizer.ImportState(state); }
            catch (InvalidDataException e)
            {
                optimizer.ImportState(previous);
                throw new InvalidDataException($"Checkpoint '{path}': {e.Message}", e);
            }
        }
        for (int i = 0; i < all.Count; i++) Values(i).CopyTo(store.Value(all[i]));
        return metadata;
    }

    /// <summary>Reads an integer metadata entry (e.g. the epoch), or a default.</summary>
    public static int MetadataInt(IReadOnlyDictionary<string, string> metadata, string key, int fallback = 0) =>
        metadata.TryGetValue(key, out var v) && int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int i) ? i : fallback;
}
