using System.Globalization;

namespace MtlMoe.Model.Data;

/// <summary>
/// A parsed and validated CUB-200-2011 style data set. <see cref="Load"/> reads the folder layout
/// (<c>images.txt</c>, <c>image_class_labels.txt</c>, <c>train_test_split.txt</c>, <c>classes.txt</c>,
/// <c>bounding_boxes.txt</c>, <c>images/</c>; <c>parts/</c> and <c>attributes/</c> are ignored) and checks
/// everything before training starts. Errors are <see cref="CubFormatException"/>s whose message starts with
/// the file and line:
/// <list type="bullet">
/// <item><c>&lt;root&gt;/bounding_boxes.txt: required file is missing</c></item>
/// <item><c>images.txt:3: expected 2 fields (&lt;image_id&gt; &lt;path&gt;), got 1</c></item>
/// <item><c>bounding_boxes.txt:4: 'x' is not a number</c>, <c>images.txt:2: 'a' is not an integer id</c></item>
/// <item><c>images.txt:5: duplicate image id 4 (first on line 4)</c></item>
/// <item><c>train_test_split.txt:7: unknown image id 99 (not in images.txt)</c></item>
/// <item><c>image_class_labels.txt: image id 6 (images.txt line 6) has no line</c></item>
/// <item><c>image_class_labels.txt:2: class id 7 out of range 1..3 (classes.txt)</c></item>
/// <item><c>train_test_split.txt:2: split flag '2' must be 1 (train) or 0 (test)</c></item>
/// <item><c>bounding_boxes.txt:3: box of image 3 has no area (w=0, h=20)</c></item>
/// <item><c>bounding_boxes.txt:3: box of image 3 (…) lies outside the 64x64 image by more than 2 px</c></item>
/// <item><c>images.txt:1: image file 'images/…' does not exist</c></item>
/// <item><c>&lt;image path&gt;: not a recognised image format …</c>, <c>…: image header claims 100000x100000 = … pixels, over the limit …</c>,
/// <c>…: truncated or corrupt image …</c></item>
/// </list>
/// </summary>
public sealed class CubDataset
{
    /// <summary>Metadata file names.</summary>
    public const string ImagesFile = "images.txt", LabelsFile = "image_class_labels.txt", SplitFile = "train_test_split.txt",
        ClassesFile = "classes.txt", BoxesFile = "bounding_boxes.txt", ImagesDir = "images";

    /// <summary>The CUB_200_2011 folder, or null for an in-memory set.</summary>
    public string? Root { get; }

    /// <summary>Class names by 0-based class index (classes.txt order).</summary>
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>Every valid image, by ascending image id.</summary>
    public IReadOnlyList<CubSample> Samples { get; }

    /// <summary>The train split.</summary>
    public IReadOnlyList<CubSample> Train { get; }

    /// <summary>The test split.</summary>
    public IReadOnlyList<CubSample> Test { get; }

    /// <summary>Images (or unparseable lines) dropped under <see cref="CubValidationOptions.SkipBad"/>.</summary>
    public int SkippedCount => SkipReasons.Count;

    /// <summary>One message per dropped image or line.</summary>
    public IReadOnlyList<string> SkipReasons { get; }

    /// <summary>Number of classes.</summary>
    public int NumClasses => ClassNames.Count;

    /// <summary>A data set from already validated samples (in-memory synthetic sets).</summary>
    public CubDataset(IReadOnlyList<string> classNames, IReadOnlyList<CubSample> samples, string? root = null, IReadOnlyList<string>? skipReasons = null)
    {
        ClassNames = classNames;
        Samples = samples;
        Train = samples.Where(s => s.IsTrain).ToArray();
        Test = samples.Where(s => !s.IsTrain).ToArray();
        Root = root;
        SkipReasons = skipReasons ?? Array.Empty<string>();
    }

    /// <summary>
    /// Parses and validates the folder <paramref name="root"/> (the CUB_200_2011 folder, or a folder that contains
    /// one). Throws <see cref="CubFormatException"/> on the first problem unless <see cref="CubValidationOptions.SkipBad"/>.
    /// </summary>
    public static CubDataset Load(string root, CubValidationOptions? options = null)
    {
        options ??= new CubValidationOptions();
        root = ResolveRoot(root);
        if (!Directory.Exists(root)) throw new CubFormatException(root, 0, "data set folder does not exist");
        return new CubParser(root, options).Parse();
    }

    /// <summary>The full path of the folder holding images.txt: <paramref name="root"/> itself or its CUB_200_2011 subfolder.</summary>
    public static string ResolveRoot(string root)
    {
        if (!File.Exists(Path.Combine(root, ImagesFile)) && Directory.Exists(Path.Combine(root, "CUB_200_2011")))
            root = Path.Combine(root, "CUB_200_2011");
        return Path.GetFullPath(root);
    }

    /// <summary>Parsing state; one per <see cref="Load"/>.</summary>
    private sealed class CubParser(string root, CubValidationOptions options)
    {
        private readonly List<string> _skips = new();
        private readonly HashSet<int> _bad = new();

        // Under --skip-bad a problem with one image drops it; otherwise it stops the load.
        private void Problem(CubFormatException e)
        {
            if (!options.SkipBad) throw e;
            if (e.ImageId <= 0 || _bad.Add(e.ImageId)) _skips.Add(e.UnderRoot(root).Message);
        }

        private List<(int Line, string[] Fields)> Read(string file, int fields, string what, bool restIsLastField)
        {
            string path = Path.Combine(root, file);
            if (!File.Exists(path)) throw new CubFormatException(path, 0, "required file is missing");
            var rows = new List<(int, string[])>();
            int lineNo = 0;
            foreach (var raw in File.ReadLines(path))
            {
                lineNo++;
                var line = raw.Trim();
                if (line.Length == 0) continue;
                string[] parts = restIsLastField
                    ? line.Split((char[]?)null, fields, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                    : line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length != fields)
                {
                    var e = new CubFormatException(file, lineNo, $"expected {fields} fields ({what}), got {parts.Length}", TryId(parts));
                    if (file == ClassesFile) throw e;
                    Problem(e);
                    continue;
                }
                rows.Add((lineNo, parts));
            }
            return rows;
        }

        private static int TryId(string[] parts)
            => parts.Length > 0 && int.TryParse(parts[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out var id) && id > 0 ? id : 0;

        private static bool ParseId(string s, out int id)
            => int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out id) && id > 0;

        // Reads a per-image file keyed by image id: checks ids parse, are known and unique.
        private Dictionary<int, (int Line, string[] Fields)> ReadPerImage(string file, int fields, string what,
            Dictionary<int, (int Line, string[] Fields)> images)
        {
            var map = new Dictionary<int, (int, string[])>();
            foreach (var (line, f) in Read(file, fields, what, false))
            {
                if (!ParseId(f[0], out int id)) { Problem(new CubFormatException(file, line, $"'{f[0]}' is not an integer id (ids start at 1)")); continue; }
                if (!images.ContainsKey(id)) { Problem(new CubFormatException(file, line, $"unknown image id {id} (not in {ImagesFile})")); continue; }
                if (map.TryGetValue(id, out var first)) { Problem(new CubFormatException(file, line, $"duplicate image id {id} (first on line {first.Item1})", id)); continue; }
                map[id] = (line, f);
            }
            foreach (var (id, (line, _)) in images)
                if (!map.ContainsKey(id)) Problem(new CubFormatException(file, 0, $"image id {id} ({ImagesFile} line {line}) has no line", id));
            return map;
        }

        public CubDataset Parse()
        {
            // classes.txt: ids 1..N, each once; any problem here stops the load, even under --skip-bad.
            var classRows = Read(ClassesFile, 2, "<class_id> <name>", true);
            var classNames = new string[classRows.Count];
            foreach (var (line, f) in classRows)
            {
                if (!ParseId(f[0], out int cid) || cid > classRows.Count)
                    throw new CubFormatException(ClassesFile, line, $"class id '{f[0]}' must be an integer in 1..{classRows.Count} (classes are numbered from 1 without gaps)");
                if (classNames[cid - 1] is not null) throw new CubFormatException(ClassesFile, line, $"duplicate class id {cid}");
                classNames[cid - 1] = f[1];
            }
            if (classNames.Length == 0) throw new CubFormatException(ClassesFile, 0, "no classes");

            // images.txt: the master list of ids.
            var images = new Dictionary<int, (int Line, string[] Fields)>();
            foreach (var (line, f) in Read(ImagesFile, 2, "<image_id> <path>", true))
            {
                if (!ParseId(f[0], out int id)) { Problem(new CubFormatException(ImagesFile, line, $"'{f[0]}' is not an integer id (ids start at 1)")); continue; }
                if (images.TryGetValue(id, out var first)) { Problem(new CubFormatException(ImagesFile, line, $"duplicate image id {id} (first on line {first.Line})", id)); continue; }
                images[id] = (line, f);
            }

            var labels = ReadPerImage(LabelsFile, 2, "<image_id> <class_id>", images);
            var split = ReadPerImage(SplitFile, 2, "<image_id> <is_training_image>", images);
            var boxes = ReadPerImage(BoxesFile, 5, "<image_id> <x> <y> <width> <height>", images);

            var ids = images.Keys.Where(id => !_bad.Contains(id)).OrderBy(i => i).ToArray();
            string imagesRoot = Path.GetFullPath(Path.Combine(root, ImagesDir)) + Path.DirectorySeparatorChar;
            var pending = new List<(int Id, int Class, bool Train, BoxF Box, int BoxLine, string Rel, string Full)>();
            foreach (int id in ids)
            {
                if (_bad.Contains(id)) continue;
                var (imgLine, imgF) = images[id];
                var (labLine, labF) = labels[id];
                if (!ParseId(labF[1], out int cid) || cid > classNames.Length)
                { Problem(new CubFormatException(LabelsFile, labLine, $"class id {labF[1]} out of range 1..{classNames.Length} ({ClassesFile})", id)); continue; }
                var (splLine, splF) = split[id];
                if (splF[1] != "0" && splF[1] != "1")
                { Problem(new CubFormatException(SplitFile, splLine, $"split flag '{splF[1]}' must be 1 (train) or 0 (test)", id)); continue; }
                var (boxLine, boxF) = boxes[id];
                var v = new float[4];
                int badField = -1;
                for (int k = 0; k < 4; k++)
                    if (!float.TryParse(boxF[k + 1], NumberStyles.Float, CultureInfo.InvariantCulture, out v[k]) || !float.IsFinite(v[k])) { badField = k + 1; break; }
                if (badField >= 0) { Problem(new CubFormatException(BoxesFile, boxLine, $"'{boxF[badField]}' is not a number", id)); continue; }
                if (v[2] <= 0 || v[3] <= 0)
                { Problem(new CubFormatException(BoxesFile, boxLine, FormattableString.Invariant($"box of image {id} has no area (w={v[2]}, h={v[3]})"), id)); continue; }
                string rel = imgF[1];
                string full = Path.GetFullPath(Path.Combine(root, ImagesDir, rel));
                if (!full.StartsWith(imagesRoot, StringComparison.Ordinal))
                { Problem(new CubFormatException(ImagesFile, imgLine, $"path '{rel}' leaves the {ImagesDir}/ folder (paths are relative to {ImagesDir}/ and stay inside it)", id)); continue; }
                if (!File.Exists(full))
                { Problem(new CubFormatException(ImagesFile, imgLine, $"image file '{ImagesDir}/{rel}' does not exist", id)); continue; }
                pending.Add((id, cid - 1, splF[1] == "1", BoxF.FromXywh(v[0], v[1], v[2], v[3]), boxLine, rel, full));
            }

            // Image headers (size, format, pixel limit), read in parallel, reported in id order.
            var loader = new ImageLoader(options.Limits);
            var sizes = new (int W, int H)[pending.Count];
            var errors = new CubFormatException?[pending.Count];
            if (options.CheckImageHeaders || options.DecodeAll)
            {
                int done = 0, step = Math.Max(1, pending.Count / 10);
                Parallel.For(0, pending.Count, new ParallelOptions { CancellationToken = options.Cancel }, i =>
                {
                    try
                    {
                        if (options.DecodeAll) { var img = loader.Load(pending[i].Full); sizes[i] = (img.Width, img.Height); }
                        else sizes[i] = loader.ReadSize(pending[i].Full);
                    }
                    catch (CubFormatException e) { errors[i] = new CubFormatException(e.File, e.Line, e.What, pending[i].Id, e.InnerException); }
                    int n = Interlocked.Increment(ref done);
                    if (options.Progress is { } report && (n % step == 0 || n == pending.Count)) report(n, pending.Count);
                });
            }

            var samples = new List<CubSample>(pending.Count);
            float tol = options.BoxOverhangTolerance;
            for (int i = 0; i < pending.Count; i++)
            {
                var p = pending[i];
                if (errors[i] is { } err) { Problem(err); continue; }
                var box = p.Box;
                var (w, h) = sizes[i];
                if (w > 0)
                {
                    if (box.X0 < -tol || box.Y0 < -tol || box.X1 > w + tol || box.Y1 > h + tol)
                    { Problem(new CubFormatException(BoxesFile, p.BoxLine, $"box of image {p.Id} {box} lies outside the {w}x{h} image by more than {tol} px", p.Id)); continue; }
                    box = box.Clip(w, h);
                    if (box.Area <= 0)
                    { Problem(new CubFormatException(BoxesFile, p.BoxLine, $"box of image {p.Id} {box} has no area inside the {w}x{h} image", p.Id)); continue; }
                }
                samples.Add(new CubSample(p.Id, p.Rel, p.Class, p.Train, box, w, h) { FullPath = p.Full });
            }
            return new CubDataset(classNames, samples, root, _skips);
        }
    }
}
