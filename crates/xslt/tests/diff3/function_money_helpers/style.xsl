<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:map="http://www.w3.org/2005/xpath-functions/map" xmlns:f="urn:drehscheibe:test:f" exclude-result-prefixes="#all">
  <!-- Typed helper functions for money: defaults via arity overloading, sequences as results. -->
  <xsl:decimal-format name="de" decimal-separator="," grouping-separator="."/>
  <xsl:function name="f:eur" as="xs:string">
    <xsl:param name="betrag" as="xs:decimal"/>
    <xsl:sequence select="format-number($betrag, '#.##0,00', 'de') || ' €'"/>
  </xsl:function>
  <xsl:function name="f:netto" as="xs:decimal">
    <xsl:param name="p" as="element(position)"/>
    <xsl:sequence select="round(xs:decimal($p/menge) * xs:decimal($p/einzelpreis), 2)"/>
  </xsl:function>
  <xsl:function name="f:ust" as="xs:decimal">
    <xsl:param name="p" as="element(position)"/>
    <xsl:sequence select="f:ust($p, xs:decimal($p/@ust))"/>
  </xsl:function>
  <xsl:function name="f:ust" as="xs:decimal">
    <xsl:param name="p" as="element(position)"/>
    <xsl:param name="satz" as="xs:decimal"/>
    <xsl:sequence select="round(f:netto($p) * $satz div 100, 2)"/>
  </xsl:function>
  <xsl:function name="f:staffel" as="xs:decimal*">
    <xsl:param name="n" as="xs:integer"/>
    <xsl:sequence select="for $i in 1 to $n return $i * 0.5"/>
  </xsl:function>
  <xsl:template match="/rechnung">
    <r>
      <xsl:for-each select="position">
        <p nr="{@nr}" netto="{f:eur(f:netto(.))}" ust="{f:eur(f:ust(.))}" ust16="{f:eur(f:ust(., 16))}"/>
      </xsl:for-each>
      <summe><xsl:value-of select="f:eur(sum(position ! f:netto(.)) + sum(position ! f:ust(.)))"/></summe>
      <staffel><xsl:value-of select="f:staffel(4)"/></staffel>
      <ref><xsl:value-of select="f:eur#1(12.5), (f:staffel#1)(2) => sum()"/></ref>
    </r>
  </xsl:template>
</xsl:stylesheet>
