using System.Buffers.Binary;
using System.IO.Compression;

namespace Compiled.Nets.Data;

/// <summary>Readers for the IDX format (MNIST, Fashion-MNIST; raw or gzip) and the CIFAR-10 binary format.</summary>
public static class DatasetReaders
{
    /// <summary>Fashion-MNIST's class names in label order.</summary>
    public static readonly string[] FashionMnistClasses = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];
    /// <summary>CIFAR-10's class names in label order.</summary>
    public static readonly string[] Cifar10Classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

    /// <summary>Reads a whole file, un-gzipping it when it starts with the gzip magic.</summary>
    public static byte[] ReadMaybeGzip(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Data file '{path}' does not exist.", path);
        var raw = File.ReadAllBytes(path);
        if (raw.Length >= 2 && raw[0] == 0x1f && raw[1] == 0x8b)
        {
            try
            {
                using var gz = new GZipStream(new MemoryStream(raw), CompressionMode.Decompress);
                using var ms = new MemoryStream();
                gz.CopyTo(ms);
                if (ms.Length == 0) throw new InvalidDataException($"'{path}' is a corrupt or truncated gzip file: it decompresses to nothing.");
                return ms.ToArray();
            }
            catch (InvalidDataException e) { throw new InvalidDataException($"'{path}' is a corrupt or truncated gzip file: {e.Message}", e); }
            catch (EndOfStreamException e) { throw new InvalidDataException($"'{path}' is a truncated gzip file.", e); }
        }
        return raw;
    }

    /// <summary>Reads IDX unsigned-byte images ([N, rows, cols], magic 0x00000803) scaled to [0, 1].</summary>
    public static (float[] Images, int Count, int Rows, int Cols) ReadIdxImages(string path)
    {
        var b = ReadMaybeGzip(path);
        int magic = b.Length >= 4 ? BinaryPrimitives.ReadInt32BigEndian(b) : 0;
        if (b.Length >= 4 && magic != 0x803) throw new InvalidDataException($"'{path}' is not an IDX image file (magic 0x{magic:X8}, expected 0x00000803).");
        if (b.Length < 16) throw new InvalidDataException($"'{path}' is truncated: {b.Length} bytes, an IDX image header needs 16.");
        int n = BinaryPrimitives.ReadInt32BigEndian(b.AsSpan(4)), rows = BinaryPrimitives.ReadInt32BigEndian(b.AsSpan(8)), cols = BinaryPrimitives.ReadInt32BigEndian(b.AsSpan(12));
        if (n < 0 || rows <= 0 || cols <= 0) throw new InvalidDataException($"'{path}' has an invalid IDX header ({n} × {rows} × {cols}).");
        long need = 16 + (long)n * rows * cols;
        if (b.Length < need) throw new InvalidDataException($"'{path}' is truncated: {n} images of {rows}×{cols} need {need} bytes, the file has {b.Length}.");
        var images = new float[(long)n * rows * cols];
        for (long i = 0; i < images.Length; i++) images[i] = b[16 + i] / 255f;
        return (images, n, rows, cols);
    }

    /// <summary>Reads IDX unsigned-byte labels (magic 0x00000801).</summary>
    public static int[] ReadIdxLabels(string path, int classes)
    {
        var b = ReadMaybeGzip(path);
        int magic = b.Length >= 4 ? BinaryPrimitives.ReadInt32BigEndian(b) : 0;
        if (b.Length >= 4 && magic != 0x801) throw new InvalidDataException($"'{path}' is not an IDX label file (magic 0x{magic:X8}, expected 0x00000801).");
        if (b.Length < 8) throw new InvalidDataException($"'{path}' is truncated: {b.Length} bytes, an IDX label header needs 8.");
        if (magic != 0x801) throw new InvalidDataException($"'{path}' is not an IDX label file (magic 0x{magic:X8}, expected 0x00000801).");
        int n = BinaryPrimitives.ReadInt32BigEndian(b.AsSpan(4));
        if (n < 0 || b.Length < 8L + n) throw new InvalidDataException($"'{path}' is truncated: {n} labels need {8L + n} bytes, the file has {b.Length}.");
        var labels = new int[n];
        for (int i = 0; i < n; i++)
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
        const int record = 1 + 3 * 32 * 32;
        var samples = new List<float>(); var labels = new List<int>();
        foreach (var path in batchFiles)
        {
            if (!File.Exists(path)) throw new FileNotFoundException($"CIFAR-10 batch '{path}' does not exist.", path);
            var b = File.ReadAllBytes(path);
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
        return new Dataset(samples.ToArray(), labels.ToArray(), [3, 32, 32], 10, Cifar10Classes);
    }
}
