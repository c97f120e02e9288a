<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:map="http://www.w3.org/2005/xpath-functions/map" xmlns:f="urn:drehscheibe:test:f" exclude-result-prefixes="#all">
  <!-- Temporary trees are navigable in 2.0+ (no result tree fragments); sorting into a typed variable; as="element()*". -->
  <xsl:template match="/antraege">
    <xsl:variable name="zeilen" as="element(z)*">
      <xsl:for-each select="antrag">
        <z id="{@id}" b="{@betrag}" n="{name}"/>
      </xsl:for-each>
    </xsl:variable>
    <xsl:variable name="baum">
      <liste><xsl:copy-of select="$zeilen[xs:decimal(@b) gt 0]"/></liste>
    </xsl:variable>
    <xsl:variable name="sortiert" as="element(z)*">
      <xsl:for-each select="$zeilen">
        <xsl:sort select="@n"/>
        <xsl:sort select="xs:decimal(@b)" order="descending"/>
        <xsl:sequence select="."/>
      </xsl:for-each>
    </xsl:variable>
    <r>
      <a><xsl:value-of select="count($baum/liste/z), $baum//z[last()]/@id"/></a>
      <b><xsl:value-of select="$sortiert/@id"/></b>
      <c><xsl:value-of select="$zeilen[1]/parent::node() => count(), $zeilen[2]/preceding-sibling::z => count(), $baum/liste/z[2]/preceding-sibling::z/@id"/></c>
      <xsl:sequence select="$sortiert[1]"/>
    </r>
  </xsl:template>
</xsl:stylesheet>
