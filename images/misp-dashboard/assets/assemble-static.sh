#!/bin/sh
# Lays out the front-end files that upstream's install_dependencies.sh downloads into static/ at install time,
# from the npm packages pinned in package-lock.json (integrity-checked by `npm ci`) and the punchcard files the
# Dockerfile fetched with ADD --checksum. Usage: assemble-static.sh NODE_MODULES PUNCHCARD_DIR OUT_DIR
set -eu

nm=$1
punchcard=$2
out=$3

mkdir -p "$out/js" "$out/css/images" "$out/fonts"

# jQuery 3.2.1
cp "$nm/jquery/dist/jquery.min.js" "$out/js/jquery.min.js"
# Flot 0.8.3 (npm ships jquery.flot.pie.js unminified; upstream's zip had a minified copy of the same file)
for f in jquery.flot.js jquery.flot.resize.js jquery.flot.time.js; do
    cp "$nm/flot/$f" "$out/js/$f"
done
cp "$nm/flot/jquery.flot.pie.js" "$out/js/jquery.flot.pie.min.js"
# jQuery UI 1.12.1
cp "$nm/jquery-ui-dist/jquery-ui.min.js" "$out/js/jquery-ui.min.js"
cp "$nm/jquery-ui-dist/jquery-ui.min.css" "$out/css/jquery-ui.min.css"
cp "$nm/jquery-ui-dist/images/"* "$out/css/images/"
# SB Admin 2 3.3.7 with its Font Awesome and Bootstrap glyphicon fonts
cp "$nm/startbootstrap-sb-admin-2/dist/js/"* "$out/js/"
cp "$nm/startbootstrap-sb-admin-2/dist/css/"* "$out/css/"
cp "$nm/startbootstrap-sb-admin-2/vendor/font-awesome/css/"* "$out/css/"
cp "$nm/startbootstrap-sb-admin-2/vendor/font-awesome/fonts/"* "$out/fonts/"
cp "$nm/startbootstrap-sb-admin-2/vendor/bootstrap/fonts/"* "$out/fonts/"
# Leaflet 1.9.3
cp "$nm/leaflet/dist/leaflet.js" "$out/js/leaflet.js"
cp "$nm/leaflet/dist/leaflet.css" "$out/css/leaflet.css"
cp "$nm/leaflet/dist/images/"* "$out/css/images/"
# jVectorMap 2.0.3, and its Miller-projection world map under the name upstream's JavaScript asks for
cp "$nm/jvectormap/jquery-jvectormap.min.js" "$out/js/jquery-jvectormap-2.0.3.min.js"
cp "$nm/jvectormap/jquery-jvectormap.css" "$out/css/jquery-jvectormap-2.0.3.css"
sed "s/'addMap', 'world_mill_en'/'addMap', 'world_mill'/" \
    "$nm/jvectormap/tests/assets/jquery-jvectormap-world-mill-en.js" >"$out/js/jquery-jvectormap-world-mill.js"
grep -q "'addMap', 'world_mill'," "$out/js/jquery-jvectormap-world-mill.js"
# DataTables 1.10.16 (npm ships jquery.dataTables.js unminified)
cp "$nm/datatables.net/js/jquery.dataTables.js" "$out/js/jquery.dataTables.min.js"
cp "$nm/datatables.net-bs/css/dataTables.bootstrap.css" "$out/css/dataTables.bootstrap.css"
cp "$nm/datatables.net-bs/js/dataTables.bootstrap.js" "$out/js/dataTables.bootstrap.js"
# Bootstrap 3 Typeahead, Moment.js, vis.js 4.21.0 (with the images its stylesheet points to)
cp "$nm/bootstrap-3-typeahead/bootstrap3-typeahead.min.js" "$out/js/bootstrap3-typeahead.min.js"
cp "$nm/moment/moment.js" "$out/js/moment.js"
cp "$nm/vis/dist/vis.min.js" "$out/js/vis.min.js"
cp "$nm/vis/dist/vis.min.css" "$out/css/vis.min.css"
cp -R "$nm/vis/dist/img" "$out/css/img"
# jquery-punchcard (not on npm)
cp "$punchcard/punchcard.js" "$out/js/punchcard.js"
cp "$punchcard/punchcard.css" "$out/css/punchcard.css"
