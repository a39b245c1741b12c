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

    /// <summary>Saves parameters, buffers, optional optimizer state and metadata, atomically.</summary>
    public static void Save(string path, ParameterStore store, Optimizer? optimizer = null, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var tensors = store.All.Select(p => SafeTensor.FromFloats(p.Name, p.Shape.ToArray(), store.ReadValue(p))).ToList();
        if (optimizer is not null)
            foreach (var (name, data) in optimizer.ExportState())
                tensors.Add(SafeTensor.FromFloats(OptimizerPrefix + name, [data.Length], data));
        var meta = new Dictionary<string, string>(metadata ?? new Dictionary<string, string>(), StringComparer.Ordinal) { ["format"] = "compiled-nets-checkpoint-v1" };
        SafeTensorsFile.Write(path, tensors, meta);
    }

    /// <summary>Loads a checkpoint into <paramref name="store"/> (and the optimizer); returns its metadata.</summary>
    /// <exception cref="InvalidDataException">Lists every missing, unexpected and mismatched tensor, naming the file.</exception>
    public static IReadOnlyDictionary<string, string> Load(string path, ParameterStore store, Optimizer? optimizer = null)
    {
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
        foreach (var p in store.All) byName[p.Name].CopyTo(store.Value(p));
        if (optimizer is not null)
        {
            var state = tensors.Where(t => t.Name.StartsWith(OptimizerPrefix, StringComparison.Ordinal))
                .ToDictionary(t => t.Name.Substring(OptimizerPrefix.Length), t => t.ToFloats(), StringComparer.Ordinal);
            try { optimizer.ImportState(state); }
            catch (InvalidDataException e) { throw new InvalidDataException($"Checkpoint '{path}': {e.Message}", e); }
        }
        return metadata;
    }

    /// <summary>Reads an integer metadata entry (e.g. the epoch), or a default.</summary>
    public static int MetadataInt(IReadOnlyDictionary<string, string> metadata, string key, int fallback = 0) =>
        metadata.TryGetValue(key, out var v) && int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int i) ? i : fallback;
}
