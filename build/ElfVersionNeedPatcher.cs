// Marks one symbol-version requirement of an ELF64 shared library as weak (VER_FLG_WEAK), so the dynamic loader
// accepts the library when the system lacks that version. Used at build time (an MSBuild inline task compiles this
// file) to make TorchSharp's libLibTorchSharp.so load on Debian 12: it names GLIBCXX_3.4.32 only for a GCC 13 marker
// symbol that is never called, while libtorch itself needs GLIBCXX_3.4.26.
// The test project compiles this file too, with ELF_PATCHER_NO_MSBUILD defined.
using System;
using System.IO;
using System.Text;

namespace Compiled.Nets.Build
{
    /// <summary>What <see cref="ElfVersionNeedPatcher.MarkWeak"/> did.</summary>
    public enum ElfPatchResult { Patched, AlreadyWeak, NotNeeded }

    /// <summary>Walks .gnu.version_r (SHT_GNU_verneed) of an ELF64 little-endian file and sets VER_FLG_WEAK on one version.</summary>
    public static class ElfVersionNeedPatcher
    {
        private const uint ShtGnuVerneed = 0x6ffffffe;
        private const ushort VerFlgWeak = 0x2;

        /// <summary>Patches <paramref name="path"/> in place (idempotent).</summary>
        /// <exception cref="InvalidDataException">When the file is not a well-formed ELF64 little-endian object.</exception>
        public static ElfPatchResult MarkWeak(string path, string version)
        {
            byte[] b = File.ReadAllBytes(path);
            var result = MarkWeak(b, version, path);
            if (result == ElfPatchResult.Patched)
            {
                // Write beside and rename, so a crash never leaves a half-written library.
                string tmp = path + ".patching";
                File.WriteAllBytes(tmp, b);
                File.Copy(tmp, path, overwrite: true);
                File.Delete(tmp);
            }
            return result;
        }

        /// <summary>Patches the bytes of an ELF file in memory.</summary>
        public static ElfPatchResult MarkWeak(byte[] b, string version, string name = "input")
        {
            if (b.Length < 64 || b[0] != 0x7f || b[1] != (byte)'E' || b[2] != (byte)'L' || b[3] != (byte)'F')
                throw new InvalidDataException($"{name}: not an ELF file.");
            if (b[4] != 2 || b[5] != 1) throw new InvalidDataException($"{name}: only 64-bit little-endian ELF is supported.");
            ulong shoff = U64(b, 0x28, name);
            int shentsize = U16(b, 0x3A, name), shnum = U16(b, 0x3C, name);
            if (shentsize < 64 || shoff == 0) throw new InvalidDataException($"{name}: no section headers.");
            ElfPatchResult result = ElfPatchResult.NotNeeded;
            for (int i = 0; i < shnum; i++)
            {
                long sh = Checked((long)shoff + (long)i * shentsize, 64, b, name);
                if (U32(b, sh + 4, name) != ShtGnuVerneed) continue;
                long off = (long)U64(b, sh + 0x18, name);
                long size = (long)U64(b, sh + 0x20, name);
                int link = (int)U32(b, sh + 0x28, name);
                uint count = U32(b, sh + 0x2C, name); // sh_info: number of Verneed entries
                Checked(off, size, b, name);
                if (link >= shnum) throw new InvalidDataException($"{name}: .gnu.version_r links to section {link} of {shnum}.");
                long strsh = Checked((long)shoff + (long)link * shentsize, 64, b, name);
                long stroff = (long)U64(b, strsh + 0x18, name), strsize = (long)U64(b, strsh + 0x20, name);
                Checked(stroff, strsize, b, name);
                long vn = off;
                for (uint n = 0; n < count; n++)
                {
                    Checked(vn, 16, b, name);
                    int cnt = U16(b, vn + 2, name);
                    long aux = vn + U32(b, vn + 8, name);
                    for (int a = 0; a < cnt; a++)
                    {
                        Checked(aux, 16, b, name);
                        uint vnaName = U32(b, aux + 8, name);
                        if (vnaName >= strsize) throw new InvalidDataException($"{name}: version name offset {vnaName} outside the string table.");
                        if (CString(b, stroff + vnaName, stroff + strsize) == version)
                        {
                            ushort flags = (ushort)U16(b, aux + 4, name);
                            if ((flags & VerFlgWeak) != 0) { if (result == ElfPatchResult.NotNeeded) result = ElfPatchResult.AlreadyWeak; }
                            else
                            {
                                flags |= VerFlgWeak;
                                b[aux + 4] = (byte)flags; b[aux + 5] = (byte)(flags >> 8);
                                result = ElfPatchResult.Patched;
                            }
                        }
                        uint next = U32(b, aux + 12, name);
                        if (next == 0) break;
                        aux += next;
                    }
                    uint nextVn = U32(b, vn + 12, name);
                    if (nextVn == 0) break;
                    vn += nextVn;
                }
            }
            return result;
        }

        private static long Checked(long off, long len, byte[] b, string name)
        {
            if (off < 0 || len < 0 || off > b.Length - len) throw new InvalidDataException($"{name}: truncated or corrupt (offset {off} + {len} beyond {b.Length} bytes).");
            return off;
        }

        private static int U16(byte[] b, long o, string name) { Checked(o, 2, b, name); return b[o] | b[o + 1] << 8; }
        private static uint U32(byte[] b, long o, string name) { Checked(o, 4, b, name); return BitConverter.ToUInt32(b, (int)o); }
        private static ulong U64(byte[] b, long o, string name) { Checked(o, 8, b, name); return BitConverter.ToUInt64(b, (int)o); }

        private static string CString(byte[] b, long start, long end)
        {
            long e = start;
            while (e < end && b[e] != 0) e++;
            return Encoding.ASCII.GetString(b, (int)start, (int)(e - start));
        }
    }

#if !ELF_PATCHER_NO_MSBUILD
    /// <summary>MSBuild task: patches each given library (missing files are skipped).</summary>
    public sealed class MarkElfVersionNeedWeak : Microsoft.Build.Utilities.Task
    {
        [Microsoft.Build.Framework.Required] public Microsoft.Build.Framework.ITaskItem[] Files { get; set; } = Array.Empty<Microsoft.Build.Framework.ITaskItem>();
        [Microsoft.Build.Framework.Required] public string Version { get; set; } = "";

        public override bool Execute()
        {
            foreach (var f in Files)
            {
                string path = f.ItemSpec;
                if (!File.Exists(path)) continue;
                try
                {
                    var r = ElfVersionNeedPatcher.MarkWeak(path, Version);
                    Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Low, $"{path}: {Version} {r}");
                }
                catch (Exception e) when (e is InvalidDataException or IOException)
                {
                    Log.LogError($"Could not patch {path}: {e.Message}");
                    return false;
                }
            }
            return true;
        }
    }
#endif
}
