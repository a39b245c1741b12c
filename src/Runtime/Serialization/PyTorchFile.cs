using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace Compiled.Nets.Serialization;

/// <summary>
/// Reads state dicts written by <c>torch.save</c> in the zip format (PyTorch ≥ 1.6), such as Hugging Face's
/// <c>pytorch_model.bin</c>: <c>&lt;top&gt;/data.pkl</c> (the pickled OrderedDict), <c>&lt;top&gt;/data/&lt;key&gt;</c>
/// (raw storages), <c>&lt;top&gt;/byteorder</c> and <c>&lt;top&gt;/version</c>. The pickle is interpreted by a safe
/// reader that never runs code and rejects any global outside tensor rebuilding and OrderedDict. Strided and offset
/// views are gathered into contiguous tensors; tensors that share a storage (tied weights) each get their values.
/// </summary>
public static class PyTorchFile
{
    /// <summary>Reads a <c>torch.save</c> zip file.</summary>
    /// <param name="path">The file, e.g. <c>pytorch_model.bin</c>.</param>
    /// <param name="toFloat32">Convert F16, BF16 and F64 tensors to F32 (integer tensors are kept).</param>
    /// <returns>The state dict's tensors in file order, contiguous and little-endian.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">Names the file and what is wrong (malformed zip or pickle, a global
    /// outside the allow-list, a storage too short for its tensors…).</exception>
    /// <example><code>var tensors = PyTorchFile.Read("pytorch_model.bin", toFloat32: true);</code></example>
    public static IReadOnlyList<SafeTensor> Read(string path, bool toFloat32 = false)
    {
        FileStream fs;
        try { fs = File.OpenRead(path); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        { throw new FileNotFoundException($"PyTorch file '{path}' does not exist.", path); }
        using (fs) return Read(fs, path, toFloat32);
    }

    /// <summary>Reads a <c>torch.save</c> zip archive from a stream (a forward-only one is buffered); <paramref name="sourceName"/> prefixes errors.</summary>
    /// <exception cref="InvalidDataException">Malformed content; the message starts with <paramref name="sourceName"/>.</exception>
    public static IReadOnlyList<SafeTensor> Read(Stream stream, string sourceName, bool toFloat32 = false)
    {
        if (!stream.CanSeek)
        {
            // The zip directory is at the end: buffer a forward-only stream.
            var copy = new MemoryStream();
            stream.CopyTo(copy);
            copy.Position = 0;
            stream = copy;
        }
        try { return ReadArchive(stream, toFloat32); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{sourceName}: {e.Message}", e); }
    }

    private static List<SafeTensor> ReadArchive(Stream stream, bool toFloat32)
    {
        if (stream.Length >= 2)
        {
            // The pre-1.6 format is a bare pickle stream (starting with PROTO 2); say so rather than "not a zip".
            Span<byte> head = stackalloc byte[2];
            long start = stream.Position;
            stream.ReadExactly(head);
            stream.Position = start;
            if (head[0] == 0x80 && head[1] <= 5)
                throw new InvalidDataException("this is the legacy (PyTorch < 1.6) torch.save format, which is not supported; re-save it with a newer torch or convert it to safetensors.");
        }
        using var zip = Zip(() => new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true), "the archive");
        var entries = Zip(() => zip.Entries, "the archive's directory"); // read on first access, so it can fail here
        // Two entries of one name: which one a reader takes is arbitrary, so neither is trusted.
        if (entries.GroupBy(e => e.FullName, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1) is { } dup)
            throw new InvalidDataException($"the archive holds {dup.Count()} entries named {dup.Key}.");
        var pickles = entries.Where(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) && e.FullName.IndexOf('/') == e.FullName.Length - "/data.pkl".Length).ToList();
        if (pickles.Count != 1)
            throw new InvalidDataException(pickles.Count == 0
                ? $"no <top>/data.pkl entry (found: {string.Join(", ", entries.Take(10).Select(e => e.FullName))}{(entries.Count > 10 ? ", …" : "")})."
                : $"several data.pkl entries ({string.Join(", ", pickles.Select(e => e.FullName))}).");
        var pkl = pickles[0];
        string prefix = pkl.FullName[..^"data.pkl".Length];

        bool bigEndian = false;
        if (zip.GetEntry(prefix + "byteorder") is { } bo)
        {
            string order = Encoding.ASCII.GetString(ReadEntry(bo, stream.Length)).Trim();
            bigEndian = order switch
            {
                "little" => false,
                "big" => true,
                _ => throw new InvalidDataException($"{bo.FullName} says '{order}', expected 'little' or 'big'."),
            };
        }

        var root = PickleReader.Load(ReadEntry(pkl, stream.Length), pkl.FullName);
        if (root is not PickleReader.Dict dict)
            throw new InvalidDataException($"{pkl.FullName} holds a {PickleReader.Describe(root)}, not a state dict.");

        var views = new List<(string Name, PickleReader.TensorView View)>(dict.Items.Count);
        foreach (var (key, value) in dict.Items)
        {
            string name = key as string ?? throw new InvalidDataException($"{pkl.FullName} has a state dict key of type {PickleReader.Describe(key)}, not str.");
            views.Add((name, value as PickleReader.TensorView ?? throw new InvalidDataException($"state dict entry '{name}' is a {PickleReader.Describe(value)}, not a tensor.")));
        }
        // Storages are read once and dropped after their last tensor; a tensor that is its whole storage takes the
        // bytes without a copy, so a typical checkpoint peaks at about its own size rather than twice that.
        var uses = views.GroupBy(v => v.View.Storage.Key).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        var storages = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        var tensors = new List<SafeTensor>(views.Count);
        // What the tensors may materialise in all: tied weights and slices share storages, but never more than a
        // few times what the archive holds.
        long budget = 4 * stream.Length + (1L << 20), materialised = 0;
        foreach (var (name, view) in views)
        {
            var s = view.Storage;
            if (!storages.TryGetValue(s.Key, out var bytes))
            {
                string entryName = prefix + "data/" + s.Key;
                var entry = zip.GetEntry(entryName) ?? throw new InvalidDataException($"tensor '{name}' uses storage '{s.Key}', but {entryName} is missing.");
                if (s.Numel > Array.MaxLength / SafeTensor.Size(s.DType))
                    throw new InvalidDataException($"storage '{s.Key}' declares {s.Numel} {s.TypeName} elements, more than one array can hold.");
                long need = s.Numel * SafeTensor.Size(s.DType);
                if (entry.Length != need)
                    throw new InvalidDataException($"{entryName} holds {entry.Length} bytes, but its {s.TypeName} declares {s.Numel} elements ({need} bytes).");
                bytes = ReadEntry(entry, stream.Length);
                if (bigEndian) SwapBytes(bytes, SafeTensor.Size(s.DType));
                storages[s.Key] = bytes;
            }
            bool last = --uses[s.Key] == 0;
            if (last) storages.Remove(s.Key);
            long count = view.Shape.Aggregate(1L, (a, d) => a * d);
            if ((materialised += count * SafeTensor.Size(s.DType)) > budget)
                throw new InvalidDataException($"the tensors up to '{name}' add up to {materialised} bytes from a {stream.Length}-byte archive; views that share storages this much are not a state dict.");
            var data = last && view.Offset == 0 && IsContiguous(view) && count == s.Numel ? bytes : Gather(bytes, view);
            var t = new SafeTensor(name, s.DType, view.Shape, data);
            tensors.Add(toFloat32 && t.DType is SafeTensorDType.F16 or SafeTensorDType.BF16 or SafeTensorDType.F64 ? t.ToFloat32() : t);
        }
        return tensors;
    }

    /// <summary>Copies a strided view out of its storage as a contiguous row-major array.</summary>
    private static byte[] Gather(byte[] storage, PickleReader.TensorView v)
    {
        int es = SafeTensor.Size(v.Storage.DType), rank = v.Shape.Length;
        long count = 1;
        foreach (int d in v.Shape) count *= d;
        var result = new byte[count * es];
        if (count == 0) return result;
        if (IsContiguous(v))
        {
            storage.AsSpan((int)(v.Offset * es), result.Length).CopyTo(result);
            return result;
        }
        // Odometer over the index, one element at a time: strided views are rare and small in checkpoints.
        var index = new int[rank];
        long src = v.Offset;
        for (long i = 0; i < count; i++)
        {
            storage.AsSpan((int)(src * es), es).CopyTo(result.AsSpan((int)(i * es)));
            for (int d = rank - 1; d >= 0; d--)
            {
                src += v.Stride[d];
                if (++index[d] < v.Shape[d]) break;
                src -= v.Stride[d] * v.Shape[d];
                index[d] = 0;
            }
        }
        return result;
    }

    /// <summary>Row-major contiguous: every dimension longer than 1 has the row-major stride (size-1 strides are arbitrary).</summary>
    private static bool IsContiguous(PickleReader.TensorView v)
    {
        long expected = 1;
        for (int i = v.Shape.Length - 1; i >= 0; i--)
        {
            if (v.Shape[i] != 1 && v.Stride[i] != expected) return false;
            expected *= v.Shape[i];
        }
        return true;
    }

    private static void SwapBytes(byte[] bytes, int size)
    {
        if (size > 1)
            for (int i = 0; i + size <= bytes.Length; i += size) bytes.AsSpan(i, size).Reverse();
    }

    /// <summary>Reads a whole entry, refusing sizes that a corrupt directory could claim (so nothing is allocated for
    /// them) and entries shorter than declared.</summary>
    private static byte[] ReadEntry(ZipArchiveEntry entry, long archiveBytes)
    {
        // Deflate expands at most ~1032:1; a stored entry (what torch writes) cannot exceed the archive.
        long limit = Math.Min(Array.MaxLength, Math.Min(archiveBytes, entry.CompressedLength) * 1100L + 1024);
        if (entry.Length > limit || entry.CompressedLength > archiveBytes)
            throw new InvalidDataException($"{entry.FullName} declares {entry.Length} bytes ({entry.CompressedLength} compressed) in a {archiveBytes}-byte archive.");
        var bytes = new byte[entry.Length];
        int read = Zip(() =>
        {
            using var s = entry.Open();
            return s.ReadAtLeast(bytes, bytes.Length, throwOnEndOfStream: false);
        }, entry.FullName);
        if (read < bytes.Length) throw new InvalidDataException($"{entry.FullName} is truncated: {read} of {bytes.Length} bytes.");
        // torch stores entries uncompressed, so nothing but the CRC tells a flipped bit.
        uint crc = System.IO.Hashing.Crc32.HashToUInt32(bytes);
        if (crc != entry.Crc32) throw new InvalidDataException($"{entry.FullName} is corrupt: its CRC-32 is {crc:x8}, the archive records {entry.Crc32:x8}.");
        return bytes;
    }

    /// <summary>Runs a System.IO.Compression call, turning its corrupt-archive exceptions into <see cref="InvalidDataException"/>.</summary>
    private static T Zip<T>(Func<T> action, string what)
    {
        try { return action(); }
        catch (Exception e) when (e is InvalidDataException or IOException or NotSupportedException or ArgumentException and not ArgumentNullException)
        { throw new InvalidDataException($"{what} is not a readable zip ({e.Message})", e); }
    }
}
