using System.Buffers.Binary;
using Compiled.Nets.Serialization;

namespace Compiled.Nets.Data;

/// <summary>Readers for the IDX format (MNIST, Fashion-MNIST; raw or gzip) and the CIFAR-10 binary format.</summary>
public static class DatasetReaders
{
    /// <summary>Fashion-MNIST's class names in label order.</summary>
    public static readonly string[] FashionMnistClasses = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];
    /// <summary>CIFAR-10's class names in label order.</summary>
    public static readonly string[] Cifar10Classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

    /// <summary>
    /// Reads an IDX file (raw or gzip) whose <paramref name="headerBytes"/>-byte header declares its size through
    /// <paramref name="declared"/>: a gzip stream is decompressed no further than that, and the file must hold exactly
    /// the declared bytes. Memory is bounded by what the file declares and really holds.
    /// </summary>
    private static byte[] ReadIdx(byte[] raw, string path, int headerBytes, int magic, string kind, Func<byte[], long> declared)
    {
        bool gzip = BoundedFile.IsGzip(raw);
        var head = gzip ? BoundedFile.GunzipHead(raw, headerBytes, path) : raw.Length >= headerBytes ? raw[..headerBytes] : raw;
        if (head.Length >= 4 && BinaryPrimitives.ReadInt32BigEndian(head) is var found && found != magic)
            throw new InvalidDataException($"'{path}' is not an IDX {kind} file (magic 0x{found:X8}, expected 0x{magic:X8}).");
        if (head.Length < headerBytes)
        {
            if (gzip) BoundedFile.Gunzip(raw, headerBytes, path); // a cut or corrupt gzip stream says so
            throw new InvalidDataException($"'{path}' is truncated: {head.Length} bytes, an IDX header needs {headerBytes}.");
        }
        long need = declared(head);
        var data = gzip ? BoundedFile.Gunzip(raw, need, path) : raw;
        if (data.Length != need)
            throw new InvalidDataException(data.Length < need
                ? $"'{path}' is truncated: its header declares {need} bytes, the file holds {data.Length}."
                : $"'{path}' holds {data.Length} bytes, more than the {need} its header declares.");
        return data;
    }

    /// <summary>Reads IDX unsigned-byte images ([N, rows, cols], magic 0x00000803) scaled to [0, 1].</summary>
    /// <exception cref="InvalidDataException">Names the file and what is wrong (magic, header, size, gzip).</exception>
    public static (float[] Images, int Count, int Rows, int Cols) ReadIdxImages(string path) =>
        ParseIdxImages(BoundedFile.Read(path, long.MaxValue, "an IDX file"), path);

    /// <summary>IDX images from the file's bytes (raw or gzip); <paramref name="path"/> names them in errors.</summary>
    internal static (float[] Images, int Count, int Rows, int Cols) ParseIdxImages(byte[] raw, string path)
    {
        int n = 0, rows = 0, cols = 0;
        var b = ReadIdx(raw, path, 16, 0x803, "image", h =>
        {
            n = BinaryPrimitives.ReadInt32BigEndian(h.AsSpan(4)); rows = BinaryPrimitives.ReadInt32BigEndian(h.AsSpan(8)); cols = BinaryPrimitives.ReadInt32BigEndian(h.AsSpan(12));
            if (n < 0 || rows <= 0 || cols <= 0) throw new InvalidDataException($"'{path}' has an invalid IDX header ({n} × {rows} × {cols}).");
            Int128 pixels = (Int128)n * rows * cols;
            if (pixels > Array.MaxLength - 16) throw new InvalidDataException($"'{path}' declares {n} images of {rows}×{cols}, {pixels} pixels: more than one array holds.");
            if ((long)rows * cols > Array.MaxLength) throw new InvalidDataException($"'{path}' declares images of {rows}×{cols} pixels: more than one array holds.");
            return 16 + (long)pixels;
        });
        var images = new float[b.Length - 16];
        for (int i = 0; i < images.Length; i++) images[i] = b[16 + i] / 255f;
        return (images, n, rows, cols);
    }

    /// <summary>Reads IDX unsigned-byte labels (magic 0x00000801).</summary>
    /// <exception cref="InvalidDataException">Names the file and what is wrong, including a label outside [0, classes).</exception>
    public static int[] ReadIdxLabels(string path, int classes) => ParseIdxLabels(BoundedFile.Read(path, long.MaxValue, "an IDX file"), path, classes);

    /// <summary>IDX labels from the file's bytes (raw or gzip); <paramref name="path"/> names them in errors.</summary>
    internal static int[] ParseIdxLabels(byte[] raw, string path, int classes)
    {
        var b = ReadIdx(raw, path, 8, 0x801, "label", h =>
        {
            int count = BinaryPrimitives.ReadInt32BigEndian(h.AsSpan(4));
            if (count < 0 || count > Array.MaxLength - 8) throw new InvalidDataException($"'{path}' has an invalid IDX label count {count}.");
            return 8L + count;
        });
        var labels = new int[b.Length - 8];
        for (int i = 0; i < labels.Length; i++)
        {
            labels[i] = b[8 + i];
            if (labels[i] >= classes) throw new InvalidDataException($"'{path}': label {labels[i]} of item {i} is outside [0, {classes}).");
        }
        return labels;
    }

    /// <summary>Reads an IDX image/label pair as a dataset of [1, rows, cols] samples.</summary>
    public static Dataset ReadIdx(string imagesPath, string labelsPath, int classes = 10, IReadOnlyList<string>? classNames = null)
    {
        var (images, n, rows, cols) = ReadIdxImages(imagesPath);
        var labels = ReadIdxLabels(labelsPath, classes);
        if (labels.Length != n) throw new InvalidDataException($"'{imagesPath}' has {n} images but '{labelsPath}' has {labels.Length} labels.");
        return new Dataset(images, labels, [1, rows, cols], classes, classNames);
    }

    /// <summary>Reads CIFAR-10 binary batches (records of 1 label byte + 3072 pixel bytes, CHW) as [3, 32, 32] in [0, 1].</summary>
    public static Dataset ReadCifar10(IEnumerable<string> batchFiles)
    {
        var samples = new List<float>(); var labels = new List<int>();
        foreach (var path in batchFiles) ParseCifar10(BoundedFile.Read(path, long.MaxValue, "a CIFAR-10 batch"), path, samples, labels);
        return new Dataset(samples.ToArray(), labels.ToArray(), [3, 32, 32], 10, Cifar10Classes);
    }

    /// <summary>Appends the records of one CIFAR-10 batch file's bytes; <paramref name="path"/> names them in errors.</summary>
    internal static void ParseCifar10(byte[] b, string path, List<float> samples, List<int> labels)
    {
        const int record = 1 + 3 * 32 * 32;
        if (b.Length == 0 || b.Length % record != 0)
            throw new InvalidDataException($"'{path}' has {b.Length} bytes, not a whole number of {record}-byte CIFAR-10 records (truncated or not CIFAR-10).");
        for (int r = 0; r < b.Length / record; r++)
        {
            int label = b[r * record];
            if (label >= 10) throw new InvalidDataException($"'{path}': record {r} has label {label}, outside [0, 10).");
            labels.Add(label);
            for (int i = 1; i < record; i++) samples.Add(b[r * record + i] / 255f);
        }
    }
}
