package crypto

// German dictionaries for the fake kinds (fake.go): common given names
// and surnames, street names, cities and company name parts. Each list
// is comma-separated; entries hold no commas. They are read, never
// changed.
const (
	deFirstNames = `Anna, Maria, Emma, Mia, Hannah, Sophie, Lena, Lea, Leonie, Laura,
Lara, Julia, Sarah, Lisa, Johanna, Clara, Charlotte, Marie, Emily, Amelie,
Luisa, Lina, Ella, Ida, Greta, Frieda, Mathilda, Paula, Pia, Nele,
Katharina, Franziska, Christina, Sabine, Petra, Monika, Ursula, Renate, Helga, Gisela,
Ingrid, Brigitte, Elke, Karin, Heike, Birgit, Andrea, Claudia, Susanne, Martina,
Stefanie, Nicole, Daniela, Melanie, Sandra, Tanja, Anja, Silke, Kerstin, Katrin,
Jana, Nina, Vanessa, Jessica, Jennifer, Michelle, Svenja, Jasmin, Carina, Theresa,
Annika, Miriam, Alina, Elena, Helena, Marlene, Antonia, Mila, Luise, Rosa,
Magdalena, Dorothea, Elisabeth, Gertrud, Hildegard, Erika, Margarete, Irmgard, Käthe, Jutta,
Bärbel, Sönke, Jürgen, Günter, Jörg, Björn, Uwe, Dieter, Klaus, Wolfgang,
Hans, Peter, Michael, Thomas, Andreas, Stefan, Frank, Markus, Christian, Martin,
Alexander, Daniel, Tobias, Sebastian, Florian, Matthias, Jan, Jens, Sven, Dirk,
Holger, Ralf, Rainer, Bernd, Horst, Manfred, Werner, Heinz, Gerhard, Helmut,
Karl, Friedrich, Wilhelm, Otto, Ernst, Walter, Hermann, Heinrich, Georg, Ludwig,
Paul, Felix, Leon, Lukas, Jonas, Elias, Noah, Finn, Luca, Ben,
Maximilian, Moritz, Niklas, Julian, Philipp, David, Simon, Fabian, Benedikt, Johannes,
Jakob, Anton, Emil, Theo, Oskar, Henri, Matteo, Valentin, Konstantin, Vincent,
Lars, Timo, Kai, Nils, Malte, Henrik, Ole, Till, Torsten, Volker,
Uli, Detlef, Norbert, Rüdiger, Lothar, Siegfried, Gottfried, Reinhard, Hartmut, Joachim,
Marco, Patrick, Dennis, Marcel, Kevin, Benjamin, Dominik, Carsten, Oliver, Robert`

	deLastNames = `Müller, Schmidt, Schneider, Fischer, Weber, Meyer, Wagner, Becker, Schulz, Hoffmann,
Schäfer, Koch, Bauer, Richter, Klein, Wolf, Schröder, Neumann, Schwarz, Zimmermann,
Braun, Krüger, Hofmann, Hartmann, Lange, Schmitt, Werner, Schmitz, Krause, Meier,
Lehmann, Schmid, Schulze, Maier, Köhler, Herrmann, König, Walter, Mayer, Huber,
Kaiser, Fuchs, Peters, Lang, Scholz, Möller, Weiß, Jung, Hahn, Schubert,
Vogel, Friedrich, Keller, Günther, Frank, Berger, Winkler, Roth, Beck, Lorenz,
Baumann, Franke, Albrecht, Schuster, Simon, Ludwig, Böhm, Winter, Kraus, Martin,
Schumacher, Krämer, Vogt, Stein, Jäger, Otto, Sommer, Groß, Seidel, Heinrich,
Brandt, Haas, Schreiber, Graf, Schulte, Dietrich, Ziegler, Kuhn, Kühn, Pohl,
Engel, Horn, Busch, Bergmann, Thomas, Voigt, Sauer, Arnold, Wolff, Pfeiffer,
Ernst, Kramer, Beyer, Jansen, Hübner, Lindner, Seifert, Franz, Möbius, Kroll,
Haase, Schilling, Kunz, Wendt, Böttcher, Schäffer, Schenk, Ebert, Hesse, Nowak,
Marx, Kaufmann, Thiele, Petersen, Busse, Dreyer, Ulrich, Brückner, Weise, Lenz,
Gebhardt, Rieger, Wiegand, Kurz, Bock, Link, Fink, Sander, Oswald, Reuter,
Ritter, Kolb, Brenner, Wirth, Reinhardt, Gärtner, Bach, Heine, Thiel, Funke,
Riedel, Hein, Meißner, Wilhelm, Grimm, Schuler, Kirchner, Haupt, Rademacher, Decker,
Stahl, Lutz, Ahrens, Kessler, Bühler, Pieper, Hoppe, Rudolph, Brinkmann, Hummel,
Adam, Wolter, Jacobs, Abel, Stark, Schütz, Dörr, Strauß, Kohl, Heller,
Weigel, Eckert, Hauser, Vollmer, Rose, Nagel, Engelhardt, Hennig, Janßen, Wulf,
Schwab, Michel, Knorr, Gerlach, Lübke, Böhme, Hecht, Jahn, Zander, Oppermann`

	deStreets = `Hauptstraße, Schulstraße, Gartenstraße, Bahnhofstraße, Dorfstraße, Bergstraße, Birkenweg, Lindenstraße, Kirchstraße, Waldstraße,
Ringstraße, Schillerstraße, Goethestraße, Wiesenweg, Mühlenweg, Am Markt, Feldstraße, Rosenweg, Jahnstraße, Lessingstraße,
Friedhofstraße, Buchenweg, Mozartstraße, Eichenweg, Beethovenstraße, Parkstraße, Talstraße, Am Bach, Kastanienallee, Mittelstraße,
Poststraße, Industriestraße, Tulpenweg, Uhlandstraße, Fliederweg, Blumenstraße, Sonnenstraße, Heinestraße, Ahornweg, Drosselweg,
Amselweg, Finkenweg, Lerchenweg, Meisenweg, Brunnenstraße, Am Anger, Burgstraße, Marktplatz, Kirchweg, Grabenstraße,
Rathausstraße, Schlossstraße, Bismarckstraße, Kantstraße, Brückenstraße, Wilhelmstraße, Karlstraße, Luisenstraße, Friedrichstraße, Kaiserstraße,
Sandweg, Steinweg, Hafenstraße, Am Deich, Seestraße, Uferweg, Wallstraße, Torstraße, Neue Straße, Alte Landstraße,
Kiefernweg, Tannenweg, Erlenweg, Weidenweg, Holunderweg, Nelkenweg, Veilchenweg, Asternweg, Dahlienweg, Lilienweg,
Am Sportplatz, Zum Wald, Auf dem Berg, Im Winkel, Kölner Straße, Berliner Straße, Hamburger Straße, Münchner Straße, Frankfurter Straße, Leipziger Straße`

	deCities = `Berlin, Hamburg, München, Köln, Frankfurt am Main, Stuttgart, Düsseldorf, Leipzig, Dortmund, Essen,
Bremen, Dresden, Hannover, Nürnberg, Duisburg, Bochum, Wuppertal, Bielefeld, Bonn, Münster,
Mannheim, Karlsruhe, Augsburg, Wiesbaden, Mönchengladbach, Gelsenkirchen, Aachen, Braunschweig, Kiel, Chemnitz,
Halle (Saale), Magdeburg, Freiburg im Breisgau, Krefeld, Mainz, Lübeck, Erfurt, Oberhausen, Rostock, Kassel,
Hagen, Potsdam, Saarbrücken, Hamm, Ludwigshafen, Oldenburg, Mülheim an der Ruhr, Osnabrück, Leverkusen, Darmstadt,
Heidelberg, Solingen, Regensburg, Herne, Paderborn, Neuss, Ingolstadt, Offenbach am Main, Fürth, Würzburg,
Ulm, Heilbronn, Pforzheim, Wolfsburg, Göttingen, Bottrop, Reutlingen, Erlangen, Bremerhaven, Koblenz,
Bergisch Gladbach, Remscheid, Trier, Recklinghausen, Jena, Moers, Salzgitter, Siegen, Gütersloh, Hildesheim,
Cottbus, Kaiserslautern, Witten, Schwerin, Gera, Iserlohn, Zwickau, Düren, Esslingen am Neckar, Ratingen,
Flensburg, Konstanz, Lüneburg, Bamberg, Bayreuth, Passau, Landshut, Rosenheim, Celle, Wismar`

	// deCompanyWords name a trade; a company is "<surname> <trade> <legal form>".
	deCompanyWords = `Bau, Logistik, Elektro, Metallbau, Holzbau, Haustechnik, Immobilien, Consulting, Software, Medien,
Druck, Transporte, Handel, Maschinenbau, Automation, Sanitär, Dachbau, Gartenbau, Reisen, Optik,
Feinkost, Getränke, Textil, Möbel, Verpackung, Energie, Solar, Systemtechnik, Kunststoff, Werkzeugbau,
Spedition, Steuerberatung, Personal, Sicherheit, Reinigung, Catering, Bäckerei, Fleischerei, Autohaus, Pharma`

	deLegalForms = `GmbH, AG, KG, GmbH & Co. KG, OHG, UG (haftungsbeschränkt), e.K.`
)
