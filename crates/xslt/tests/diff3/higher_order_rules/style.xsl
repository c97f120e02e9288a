<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:map="http://www.w3.org/2005/xpath-functions/map" xmlns:f="urn:drehscheibe:test:f" exclude-result-prefixes="#all">
  <!-- Validation rules as a map of inline functions; partial application and function references. -->
  <xsl:variable name="regeln" as="map(xs:string, function(element()) as xs:boolean)" select="map {
      'plz': function($a as element()) as xs:boolean { matches($a/@plz, '^\d{5}$') },
      'betrag': function($a as element()) as xs:boolean { xs:decimal($a/@betrag) ge 0 },
      'name': function($a as element()) as xs:boolean { string-length($a/name) gt 1 }
    }"/>
  <xsl:template match="/antraege">
    <xsl:variable name="groesser" select="function($grenze, $a) { xs:decimal($a/@betrag) gt $grenze }"/>
    <xsl:variable name="ueber1000" select="$groesser(1000, ?)"/>
    <r>
      <xsl:for-each select="antrag">
        <xsl:variable name="a" select="."/>
        <a id="{@id}" verletzt="{sort(map:keys($regeln))[not($regeln(.)($a))]}" gross="{$ueber1000(.)}"/>
      </xsl:for-each>
      <summe><xsl:value-of select="fold-left(antrag, 0, function($acc, $a) { $acc + xs:decimal($a/@betrag) })"/></summe>
      <refs><xsl:value-of select="(upper-case#1, lower-case#1) ! .('Ab'), function-arity(substring#3), for-each-pair(1 to 3, 4 to 6, function($x, $y) { $x * $y })"/></refs>
    </r>
  </xsl:template>
</xsl:stylesheet>
