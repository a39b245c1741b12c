namespace Compiled.Nets.Serialization;

/// <summary>
/// Loads a network's tensors by state-dict name from a safetensors file or a Hugging Face
/// <c>model.safetensors.index.json</c> (its shards beside it): what a network's generated <c>LoadWeights()</c> calls
/// for its <c>[Weights]</c> file, whose names and shapes the build checked. Tensors the network does not use are skipped;
/// F16, BF16, F64 and (for buffers such as BatchNorm's step count) integer tensors are converted to float.
/// </summary>
public static class WeightsFile
{
    /// <summary>Copies every parameter and buffer of <paramref name="store"/> from the file.</summary>
    /// <exception cref="InvalidDataException">When the file is malformed, or (changed since the build) lacks a tensor or
    /// holds one of another shape: names the file, the tensor and both shapes.</exception>
    public static void LoadInto(ParameterStore store, string path, string network)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(path);
        var tensors = new Dictionary<string, SafeTensor>(StringComparer.Ordinal);
        foreach (var file in Files(path))
            foreach (var t in SafeTensorsFile.Read(file).Tensors) tensors[t.Name] = t;
        var problems = new List<string>();
        foreach (var p in store.All)
        {
            if (!tensors.TryGetValue(p.Name, out var t)) problems.Add($"no tensor '{p.Name}'");
            else if (!t.Shape.SequenceEqual(p.Shape)) problems.Add($"'{p.Name}' is [{string.Join(", ", t.Shape)}] in the file but {p.ShapeText} in {network}");
        }
        if (problems.Count > 0)
            throw new InvalidDataException($"'{path}' no longer fits {network} as the build checked it: {string.Join("; ", problems.Take(10))}{(problems.Count > 10 ? $"; and {problems.Count - 10} more" : "")}.");
        foreach (var p in store.All) tensors[p.Name].CopyTo(store.Value(p));
    }

    /// <summary>The safetensors files of a path: itself, or the shards an index names (as a Hugging Face checkpoint reads them).</summary>
    private static IEnumerable<string> Files(string path)
    {
        if (!path.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) return [path];
        string dir = Path.GetDirectoryName(Path.GetFullPath(path))!, index = Path.GetFileName(path);
        return HuggingFaceCheckpoint.ShardFiles(dir, index, HuggingFaceCheckpoint.ReadShardMap(dir, index)).Select(f => Path.Combine(dir, f));
    }
}
